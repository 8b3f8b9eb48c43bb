package postgres

import "testing"

func TestNamedDatabase(t *testing.T) {
	for _, c := range []struct {
		tool  string
		args  []string
		db    string
		named bool
	}{
		{"psql", nil, "", false},
		{"psql", []string{"shop"}, "shop", true},
		{"psql", []string{"--set", "X=1", "shop"}, "shop", true},
		{"psql", []string{"-v", "ON_ERROR_STOP=0", "-1", "shop"}, "shop", true},
		{"psql", []string{"-vX=1", "-q"}, "", false},
		{"psql", []string{"-d", "shop"}, "shop", true},
		{"psql", []string{"-dshop"}, "shop", true},
		{"psql", []string{"--dbname=shop"}, "shop", true},
		{"psql", []string{"--dbname", "shop"}, "shop", true},
		{"psql", []string{"-t", "shop"}, "shop", true}, // psql's -t is a flag
		{"psql", []string{"--", "shop"}, "shop", true},
		{"pg_dump", []string{"-t", "items", "shop"}, "shop", true}, // pg_dump's -t takes a table
		{"pg_dump", []string{"-t", "items"}, "", false},
		{"pg_dump", []string{"--schema", "public", "--format=c", "-Z", "5", "shop"}, "shop", true},
		{"pg_dump", []string{"-Fc", "-n", "public"}, "", false},
		{"pg_dump", []string{"--clean", "--if-exists", "shop"}, "shop", true},
		{"pg_dumpall", []string{"--clean"}, "", false},
		{"pg_dumpall", []string{"-l", "template1"}, "template1", true},
		{"pg_dumpall", []string{"--database=template1"}, "template1", true},
		{"pg_dumpall", []string{"--exclude-database", "x"}, "", false},
	} {
		db, named := namedDatabase(c.tool, c.args)
		if db != c.db || named != c.named {
			t.Errorf("namedDatabase(%s, %q) = %q, %v; want %q, %v", c.tool, c.args, db, named, c.db, c.named)
		}
	}
}
