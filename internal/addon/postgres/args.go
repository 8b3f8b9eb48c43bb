package postgres

import "strings"

// valued lists, per tool, the options whose value may follow in the next
// argument (-U name, --username name), from each tool's --help (PostgreSQL
// 13-18). The tools differ: -t, -n, -S and -E take a value for pg_dump,
// not for psql.
var valued = map[string]string{
	"psql": "c d f F h L o p P R T U v " +
		"--command --dbname --file --field-separator --host --log-file --output --port --pset " +
		"--record-separator --set --table-attr --username --variable",
	"pg_dump": "d E f F h j n N p S t T U Z " +
		"--compress --dbname --encoding --exclude-extension --exclude-schema --exclude-table " +
		"--exclude-table-and-children --exclude-table-data --exclude-table-data-and-children --extension " +
		"--extra-float-digits --file --filter --format --host --include-foreign-data --jobs " +
		"--lock-wait-timeout --port --role --rows-per-insert --schema --section --snapshot --superuser " +
		"--sync-method --table --table-and-children --username",
	"pg_dumpall": "d E f h l p S U " +
		"--database --dbname --encoding --exclude-database --extra-float-digits --file --filter --host " +
		"--lock-wait-timeout --port --role --rows-per-insert --superuser --username",
}

func takesValue(tool, opt string) bool {
	if !strings.HasPrefix(opt, "--") {
		opt = opt[1:] // "-U" → "U"
	}
	for f := range strings.FieldsSeq(valued[tool]) {
		if f == opt {
			return true
		}
	}
	return false
}

// namedDatabase reports whether the user's arguments (--pg-args) for tool
// choose the database, and which: the value of -d/--dbname (for
// pg_dumpall also -l/--database), or, for psql and pg_dump, the first
// argument that is not an option, which both read as the database, as
// Stash's own pipelines passed it. A database given so must not be given
// again with --dbname: psql then ignores the positional one without a
// word under --quiet, and pg_dump refuses it.
func namedDatabase(tool string, args []string) (db string, named bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if tool != "pg_dumpall" && i+1 < len(args) {
				return args[i+1], true
			}
			return "", false
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a, "=")
			if !hasValue && takesValue(tool, name) && i+1 < len(args) {
				i++
				value = args[i]
			}
			if name == "--dbname" || (tool == "pg_dumpall" && name == "--database") {
				return value, true
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			opt := a[:2]
			value := a[2:]
			if value == "" && takesValue(tool, opt) && i+1 < len(args) {
				i++
				value = args[i]
			} else if value != "" && !takesValue(tool, opt) {
				continue // a cluster of flags, as -xq
			}
			if opt == "-d" || (tool == "pg_dumpall" && opt == "-l") {
				return value, true
			}
		default:
			if tool != "pg_dumpall" {
				return a, true
			}
		}
	}
	return "", false
}
