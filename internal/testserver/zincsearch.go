package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ZincSearch is a running ZincSearch v0.4.10 (bin/zincsearch, built by
// hack/build-tools.sh), a search server of its own that answers part of
// Elasticsearch's API under /es/: index creation, _bulk, _refresh,
// _search, aliases. It is an independent implementation of that part, so
// the Elasticsearch addon's restore is checked against it too. What it
// does differently (known): it ignores ?scroll= and has no point in time
// (so no backup can read it), it knows legacy templates only as
// _index_template and custom analyzers only in its own form, it indexes
// asynchronously (a search after _refresh may not see a document yet),
// and it adds @timestamp to every _source.
type ZincSearch struct {
	// URL is the Elasticsearch-compatible API's base, http://127.0.0.1:PORT/es.
	URL            string
	Host           string
	Port           int
	User, Password string
}

// StartZincSearch starts one on a free port, answering as Elasticsearch
// version esVersion to GET /es/, stopped when the test ends.
func StartZincSearch(t testing.TB, esVersion string) *ZincSearch {
	t.Helper()
	NeedIntegration(t)
	bin := filepath.Join(RepoRoot(), "bin", "zincsearch")
	if _, err := os.Stat(bin); err != nil {
		missing(t, "ZincSearch ("+bin+")")
	}
	port := FreePort(t)
	z := &ZincSearch{Host: "127.0.0.1", Port: port, URL: fmt.Sprintf("http://127.0.0.1:%d/es", port), User: "admin", Password: "Zinc-test#1"}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ZINC_FIRST_ADMIN_USER="+z.User, "ZINC_FIRST_ADMIN_PASSWORD="+z.Password,
		"ZINC_DATA_PATH="+t.TempDir(), fmt.Sprintf("ZINC_SERVER_PORT=%d", port), "ZINC_SERVER_ADDRESS=127.0.0.1",
		"ZINC_TELEMETRY=false", "ZINC_PLUGIN_ES_VERSION="+esVersion, "GIN_MODE=release")
	cmd.Dir = t.TempDir()
	startListening(t, "ZincSearch", cmd, port)
	return z
}
