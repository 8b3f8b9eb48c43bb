package mongodb

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// DumpArgs are the mongodump options of --mongo-args (the Functions'
// `args` param) that a native dump honours.
type DumpArgs struct {
	// Select says which namespaces are dumped.
	Select Selection
	// Query filters the documents of the one --collection dumped.
	Query bson.D
	// Gzip compresses the archive, as mongodump --gzip does.
	Gzip bool
	// Parallel is how many collections are read at once
	// (--numParallelCollections, -j).
	Parallel int
	// UsersAndRoles adds the users and roles defined on --db
	// (--dumpDbUsersAndRoles); a full dump always carries them.
	UsersAndRoles bool
	// ReadPreference is a read preference mode (primary, secondary, …).
	ReadPreference string
	// Oplog asks for a point-in-time dump of a replica set (--oplog).
	Oplog bool
	// withConfig dumps the config database, which holds a sharded
	// cluster's metadata on its config servers.
	withConfig bool
}

// RestoreArgs are the mongorestore options of --mongo-args that a native
// restore honours.
type RestoreArgs struct {
	Select Selection
	// Rename maps namespaces (--nsFrom/--nsTo pairs, in order).
	Rename []Rename
	// Drop drops each collection before restoring it (--drop).
	Drop bool
	// NoIndexes and NoOptions skip indexes and collection options.
	NoIndexes, NoOptions bool
	// StopOnError fails on the first document the server refuses; by
	// default a document whose _id is already there is skipped and
	// counted, as mongorestore does.
	StopOnError bool
	// Parallel is how many collections are written at once (-j).
	Parallel int
	// Workers is how many bulk writes run at once per collection
	// (--numInsertionWorkersPerCollection).
	Workers int
	// Ordered keeps the archive's order inside a collection
	// (--maintainInsertionOrder), at the cost of one writer per
	// collection.
	Ordered bool
	// BypassValidation skips the collections' validators.
	BypassValidation bool
	// UsersAndRoles restores the users and roles of the --db restored
	// (--restoreDbUsersAndRoles); a full restore always does.
	UsersAndRoles bool
	// OplogReplay replays the oplog a replica-set dump carries.
	OplogReplay bool
}

// Selection chooses namespaces: mongodump's --db/--collection and
// exclusions, and mongorestore's --nsInclude/--nsExclude patterns, where
// `*` matches any run of characters.
type Selection struct {
	DB, Collection     string
	ExcludeCollections []string
	ExcludePrefixes    []string
	Include, Exclude   []string
}

// Rename is one --nsFrom/--nsTo pair; `*` in From captures what its
// place in To receives, in order.
type Rename struct{ From, To string }

// connectionFlags come from the AppBinding; giving them in args would
// point the step at another server than the one the manifest names.
var connectionFlags = map[string]bool{
	"--host": true, "-h": true, "--port": true, "--uri": true, "--username": true, "-u": true, "--password": true, "-p": true,
	"--authenticationDatabase": true, "--authenticationMechanism": true, "--ssl": true, "--tls": true,
	"--sslCAFile": true, "--tlsCAFile": true, "--sslPEMKeyFile": true, "--tlsCertificateKeyFile": true,
	"--sslPEMKeyPassword": true, "--tlsCertificateKeyFilePassword": true, "--sslAllowInvalidCertificates": true,
	"--tlsInsecure": true, "--sslAllowInvalidHostnames": true, "--gssapiServiceName": true, "--gssapiHostName": true,
	"--awsSessionToken": true, "--config": true,
}

// option is one parsed argument: --name=value, --name value, or a flag.
type option struct{ name, value string }

// lex splits args into options. takesValue says which names take a
// value; a flag that does and has none is an error naming it.
func lex(args []string, takesValue func(string) bool) ([]option, error) {
	var out []option
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return nil, fmt.Errorf("%q is not an option: the archive is the step's own, give only options", a)
		}
		name, value, hasValue := strings.Cut(a, "=")
		if connectionFlags[name] {
			return nil, fmt.Errorf("%s: the connection comes from the AppBinding and its Secret; remove it from args", name)
		}
		if takesValue(name) && !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("%s needs a value", name)
			}
			i++
			value = args[i]
		}
		out = append(out, option{name, value})
	}
	return out, nil
}

// ignored are options that change nothing a native dump or restore
// does: the stream is always an archive, and logging is the step's.
var ignored = map[string]bool{"--archive": true, "--quiet": true, "-v": true, "--verbose": true, "-vv": true, "-vvv": true}

func positive(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 256 {
		return 0, fmt.Errorf("%s=%q: give a number from 1 to 256", name, v)
	}
	return n, nil
}

func boolValue(name, v string) (bool, error) {
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: give true or false", name, v)
	}
	return b, nil
}

// ParseDumpArgs reads mongodump options. Options of mongodump that a
// native dump does not have are refused by name, never dropped.
func ParseDumpArgs(args []string) (DumpArgs, error) {
	d := DumpArgs{Parallel: 4}
	valued := map[string]bool{"--db": true, "-d": true, "--collection": true, "-c": true, "--excludeCollection": true,
		"--excludeCollectionsWithPrefix": true, "--nsInclude": true, "--nsExclude": true, "--query": true, "-q": true,
		"--numParallelCollections": true, "-j": true, "--readPreference": true}
	opts, err := lex(args, func(n string) bool { return valued[n] })
	if err != nil {
		return d, err
	}
	var query string
	for _, o := range opts {
		switch o.name {
		case "--db", "-d":
			d.Select.DB = o.value
		case "--collection", "-c":
			d.Select.Collection = o.value
		case "--excludeCollection":
			d.Select.ExcludeCollections = append(d.Select.ExcludeCollections, o.value)
		case "--excludeCollectionsWithPrefix":
			d.Select.ExcludePrefixes = append(d.Select.ExcludePrefixes, o.value)
		case "--nsInclude":
			d.Select.Include = append(d.Select.Include, o.value)
		case "--nsExclude":
			d.Select.Exclude = append(d.Select.Exclude, o.value)
		case "--query", "-q":
			query = o.value
		case "--numParallelCollections", "-j":
			if d.Parallel, err = positive(o.name, o.value); err != nil {
				return d, err
			}
		case "--readPreference":
			d.ReadPreference = o.value
		case "--gzip":
			if d.Gzip, err = boolValue(o.name, o.value); err != nil {
				return d, err
			}
		case "--dumpDbUsersAndRoles":
			if d.UsersAndRoles, err = boolValue(o.name, o.value); err != nil {
				return d, err
			}
		case "--oplog":
			if d.Oplog, err = boolValue(o.name, o.value); err != nil {
				return d, err
			}
		default:
			if !ignored[o.name] {
				return d, fmt.Errorf("%s is a mongodump option this step does not have: remove it from args (docs/addons/mongodb.md lists those it has)", o.name)
			}
		}
	}
	if d.Select.Collection != "" && d.Select.DB == "" {
		return d, errors.New("--collection needs --db")
	}
	if query != "" {
		if d.Select.Collection == "" {
			return d, errors.New("--query needs --db and --collection")
		}
		if err := bson.UnmarshalExtJSON([]byte(query), false, &d.Query); err != nil {
			return d, fmt.Errorf("--query %q is not a JSON document: %v", query, err)
		}
	}
	if d.UsersAndRoles && d.Select.DB == "" {
		return d, errors.New("--dumpDbUsersAndRoles needs --db (a dump of every database carries the users and roles anyway)")
	}
	if d.Oplog && (d.Select.DB != "" || len(d.Select.Include) > 0) {
		return d, errors.New("--oplog dumps every database: it cannot go with --db or --nsInclude")
	}
	for _, p := range append(append([]string{}, d.Select.Include...), d.Select.Exclude...) {
		if err := checkPattern(p); err != nil {
			return d, err
		}
	}
	return d, nil
}

// ParseRestoreArgs reads mongorestore options, refusing by name those a
// native restore does not have.
func ParseRestoreArgs(args []string) (RestoreArgs, error) {
	r := RestoreArgs{Parallel: 4, Workers: 1}
	valued := map[string]bool{"--db": true, "-d": true, "--collection": true, "-c": true, "--nsInclude": true,
		"--nsExclude": true, "--nsFrom": true, "--nsTo": true, "--numParallelCollections": true, "-j": true,
		"--numInsertionWorkersPerCollection": true}
	opts, err := lex(args, func(n string) bool { return valued[n] })
	if err != nil {
		return r, err
	}
	var from, to []string
	flag := func(dst *bool, o option) error {
		v, err := boolValue(o.name, o.value)
		*dst = v
		return err
	}
	for _, o := range opts {
		switch o.name {
		case "--db", "-d":
			r.Select.DB = o.value
		case "--collection", "-c":
			r.Select.Collection = o.value
		case "--nsInclude":
			r.Select.Include = append(r.Select.Include, o.value)
		case "--nsExclude":
			r.Select.Exclude = append(r.Select.Exclude, o.value)
		case "--nsFrom":
			from = append(from, o.value)
		case "--nsTo":
			to = append(to, o.value)
		case "--numParallelCollections", "-j":
			r.Parallel, err = positive(o.name, o.value)
		case "--numInsertionWorkersPerCollection":
			r.Workers, err = positive(o.name, o.value)
		case "--drop":
			err = flag(&r.Drop, o)
		case "--noIndexRestore":
			err = flag(&r.NoIndexes, o)
		case "--noOptionsRestore":
			err = flag(&r.NoOptions, o)
		case "--stopOnError":
			err = flag(&r.StopOnError, o)
		case "--maintainInsertionOrder":
			err = flag(&r.Ordered, o)
		case "--bypassDocumentValidation":
			err = flag(&r.BypassValidation, o)
		case "--restoreDbUsersAndRoles":
			err = flag(&r.UsersAndRoles, o)
		case "--oplogReplay":
			err = flag(&r.OplogReplay, o)
		case "--gzip":
			// Read either way: a gzip archive is recognised by its bytes.
		default:
			if !ignored[o.name] {
				return r, fmt.Errorf("%s is a mongorestore option this step does not have: remove it from args (docs/addons/mongodb.md lists those it has)", o.name)
			}
		}
		if err != nil {
			return r, err
		}
	}
	if r.Select.Collection != "" && r.Select.DB == "" {
		return r, errors.New("--collection needs --db")
	}
	if len(from) != len(to) {
		return r, fmt.Errorf("%d --nsFrom and %d --nsTo: give them in pairs", len(from), len(to))
	}
	for i := range from {
		if strings.Count(from[i], "*") != strings.Count(to[i], "*") {
			return r, fmt.Errorf("--nsFrom %q and --nsTo %q: give both the same number of *", from[i], to[i])
		}
		r.Rename = append(r.Rename, Rename{From: from[i], To: to[i]})
	}
	for _, p := range append(append([]string{}, r.Select.Include...), r.Select.Exclude...) {
		if err := checkPattern(p); err != nil {
			return r, err
		}
	}
	if r.Ordered {
		r.Workers = 1
	}
	return r, nil
}

func checkPattern(p string) error {
	if !strings.Contains(p, ".") {
		return fmt.Errorf("namespace pattern %q: give <database>.<collection>, either part may use *", p)
	}
	return nil
}

// match says whether name matches pattern, where * matches any run of
// characters (dots included, as in mongorestore).
func match(pattern, name string) bool {
	_, ok := capture(pattern, name)
	return ok
}

// Database says whether any collection of db may be chosen.
func (s Selection) Database(db string) bool {
	if s.DB != "" {
		return db == s.DB
	}
	if len(s.Include) == 0 {
		return true
	}
	for _, p := range s.Include {
		// A * may span the dot: a pattern's database part with one
		// may choose any database that starts as it does.
		pdb, _, _ := strings.Cut(p, ".")
		if before, _, star := strings.Cut(pdb, "*"); star && strings.HasPrefix(db, before) || !star && pdb == db {
			return true
		}
	}
	return false
}

// Chosen says whether namespace db.coll is chosen.
func (s Selection) Chosen(db, coll string) bool {
	if s.DB != "" && db != s.DB || s.Collection != "" && coll != s.Collection {
		return false
	}
	for _, c := range s.ExcludeCollections {
		if coll == c {
			return false
		}
	}
	for _, p := range s.ExcludePrefixes {
		if strings.HasPrefix(coll, p) {
			return false
		}
	}
	ns := db + "." + coll
	if len(s.Include) > 0 {
		in := false
		for _, p := range s.Include {
			in = in || match(p, ns)
		}
		if !in {
			return false
		}
	}
	for _, p := range s.Exclude {
		if match(p, ns) {
			return false
		}
	}
	return true
}

// renamed applies the first --nsFrom/--nsTo pair that matches ns.
func renamed(rules []Rename, ns string) string {
	for _, r := range rules {
		if caps, ok := capture(r.From, ns); ok {
			out := r.To
			for _, c := range caps {
				out = strings.Replace(out, "*", c, 1)
			}
			return out
		}
	}
	return ns
}

// capture matches name against pattern and returns what each * took,
// the shortest run for each but the last.
func capture(pattern, name string) ([]string, bool) {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(name, parts[0]) {
		return nil, false
	}
	if len(parts) == 1 {
		return nil, name == pattern
	}
	rest := name[len(parts[0]):]
	var caps []string
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			if !strings.HasSuffix(rest, p) {
				return nil, false
			}
			caps = append(caps, rest[:len(rest)-len(p)])
			return caps, true
		}
		j := strings.Index(rest, p)
		if j < 0 {
			return nil, false
		}
		caps = append(caps, rest[:j])
		rest = rest[j+len(p):]
	}
	return caps, true
}

// selective says whether the options choose namespaces, which makes a
// dump or a restore of part of the data: no oplog then, as in Stash.
func (s Selection) selective() bool {
	return s.DB != "" || s.Collection != "" || len(s.Include) > 0 || len(s.Exclude) > 0
}
