package mongodb

import (
	"crypto/tls"
	"net/url"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/appbinding"
)

func TestParseDumpArgs(t *testing.T) {
	for _, tt := range []struct {
		args string
		want func(DumpArgs) bool
		err  string
	}{
		{"", func(d DumpArgs) bool { return d.Parallel == 4 && d.Select.DB == "" }, ""},
		{"--db=app -c users --gzip -j 8", func(d DumpArgs) bool {
			return d.Select.DB == "app" && d.Select.Collection == "users" && d.Gzip && d.Parallel == 8
		}, ""},
		{`--db app --collection users --query {"age":{"$gt":3}}`, func(d DumpArgs) bool { return len(d.Query) == 1 && d.Query[0].Key == "age" }, ""},
		{"--excludeCollection=a --excludeCollection b --excludeCollectionsWithPrefix=tmp_", func(d DumpArgs) bool {
			return len(d.Select.ExcludeCollections) == 2 && d.Select.ExcludePrefixes[0] == "tmp_"
		}, ""},
		{"--archive --quiet --readPreference=secondaryPreferred", func(d DumpArgs) bool { return d.ReadPreference == "secondaryPreferred" }, ""},
		{"--db=app --dumpDbUsersAndRoles", func(d DumpArgs) bool { return d.UsersAndRoles }, ""},
		{"--collection=users", nil, "--collection needs --db"},
		{`--query {"a":1}`, nil, "--query needs --db and --collection"},
		{"--db app -c u --query {bad", nil, "not a JSON document"},
		{"--dumpDbUsersAndRoles", nil, "needs --db"},
		{"--oplog --db=app", nil, "--oplog dumps every database"},
		{"--host=evil:27017", nil, "--host: the connection comes from the AppBinding"},
		{"--password secret", nil, "--password: the connection comes from the AppBinding"},
		{"--out=/tmp/x", nil, "--out is a mongodump option this step does not have"},
		{"--viewsAsCollections", nil, "--viewsAsCollections is a mongodump option"},
		{"-j=0", nil, "give a number from 1 to 256"},
		{"--db", nil, "--db needs a value"},
		{"app", nil, `"app" is not an option`},
		{"--nsInclude=app", nil, "give <database>.<collection>"},
		{"--gzip=maybe", nil, "give true or false"},
	} {
		t.Run(tt.args, func(t *testing.T) {
			d, err := ParseDumpArgs(strings.Fields(tt.args))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %v quotes a password", err)
				}
				return
			}
			if err != nil || !tt.want(d) {
				t.Fatalf("got %+v, %v", d, err)
			}
		})
	}
}

func TestParseRestoreArgs(t *testing.T) {
	for _, tt := range []struct {
		args string
		want func(RestoreArgs) bool
		err  string
	}{
		{"", func(r RestoreArgs) bool { return r.Parallel == 4 && r.Workers == 1 && !r.Drop }, ""},
		{"--drop --noIndexRestore --noOptionsRestore --stopOnError --bypassDocumentValidation --gzip", func(r RestoreArgs) bool {
			return r.Drop && r.NoIndexes && r.NoOptions && r.StopOnError && r.BypassValidation
		}, ""},
		{"--nsFrom=a.* --nsTo=b.* --nsInclude a.*", func(r RestoreArgs) bool {
			return len(r.Rename) == 1 && r.Rename[0] == Rename{"a.*", "b.*"} && r.Select.Include[0] == "a.*"
		}, ""},
		{"--maintainInsertionOrder --numInsertionWorkersPerCollection=4", func(r RestoreArgs) bool { return r.Ordered && r.Workers == 1 }, ""},
		{"--nsFrom=a.*", nil, "give them in pairs"},
		{"--nsFrom=a.* --nsTo=b.c", nil, "the same number of *"},
		{"--uri=mongodb://x", nil, "--uri: the connection comes from the AppBinding"},
		{"--dir=/dump", nil, "--dir is a mongorestore option this step does not have"},
		{"--preserveUUID", nil, "--preserveUUID is a mongorestore option"},
	} {
		t.Run(tt.args, func(t *testing.T) {
			r, err := ParseRestoreArgs(strings.Fields(tt.args))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !tt.want(r) {
				t.Fatalf("got %+v, %v", r, err)
			}
		})
	}
}

func TestSelectionAndRename(t *testing.T) {
	s := Selection{Include: []string{"shop.*", "crm.contacts"}, Exclude: []string{"shop.tmp_*"}}
	for ns, want := range map[string]bool{
		"shop.items": true, "shop.tmp_x": false, "crm.contacts": true, "crm.leads": false, "other.items": false,
	} {
		db, coll, _ := strings.Cut(ns, ".")
		if got := s.Chosen(db, coll); got != want {
			t.Errorf("Chosen(%s) = %v, want %v", ns, got, want)
		}
	}
	if !s.Database("shop") || s.Database("other") {
		t.Error("Database does not follow the include patterns")
	}
	rules := []Rename{{"shop.*", "shop_copy.*"}, {"a*.x*", "b*.y*"}}
	for in, want := range map[string]string{
		"shop.items": "shop_copy.items", "a1.x2": "b1.y2", "crm.contacts": "crm.contacts", "shop.a.b": "shop_copy.a.b",
	} {
		if got := renamed(rules, in); got != want {
			t.Errorf("renamed(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestConnection(t *testing.T) {
	o := Options{Conn: &appbinding.Connection{Scheme: "mongodb", Host: "mg-0", Port: 27017, Seeds: []string{"mg-0:27017", "mg-1:27017"},
		Query: url.Values{"replicaSet": {"rs0"}}, Username: "root", Password: "hunter2"}}
	if got := o.uri(); got != "mongodb://mg-0:27017,mg-1:27017/?replicaSet=rs0" {
		t.Errorf("uri %s", got)
	}
	srv := Options{Conn: &appbinding.Connection{Scheme: "mongodb+srv", Host: "cluster0.example.com", Port: DefaultPort, Query: url.Values{}}}
	if got := srv.uri(); got != "mongodb+srv://cluster0.example.com/?" {
		t.Errorf("srv uri %s", got)
	}
	if strings.Contains(o.uri(), "hunter2") {
		t.Error("the password is in the URI")
	}
	cfg, err := o.tlsConfig()
	if err != nil || cfg != nil {
		t.Errorf("no TLS asked for: %v %v", cfg, err)
	}
	o.Conn.Query.Set("tls", "true")
	cfg, err = o.tlsConfig()
	if err != nil || cfg == nil || cfg.InsecureSkipVerify || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("tls=true: %+v %v", cfg, err)
	}
	o.Conn.Query = url.Values{}
	o.Conn.CABundle = []byte("not pem")
	if _, err := o.tlsConfig(); err == nil || !strings.Contains(err.Error(), "caBundle") {
		t.Errorf("a CA bundle without PEM: %v", err)
	}
	o.Conn.CABundle, o.Conn.ClientCert, o.Conn.ClientKey = nil, []byte("x"), []byte("y")
	if _, err := o.tlsConfig(); err == nil || !strings.Contains(err.Error(), "tlsSecret") {
		t.Errorf("a bad client certificate: %v", err)
	}
}
