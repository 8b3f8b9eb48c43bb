// Package elasticsearch backs up Elasticsearch (5 to 8) and OpenSearch
// natively, over their REST API: every selected index becomes the files
// Stash's multielasticdump wrote (<index>.json, one document per line;
// <index>.settings.json, .mapping.json, .alias.json, .template.json),
// streamed straight into the repository as one directory snapshot, so
// that elasticdump loads a backup and a backup Stash took restores. No
// Node.js or elasticdump is needed.
//
// Documents are read from a point in time with search_after where the
// server has one (Elasticsearch 7.10+, OpenSearch 2.4+), else from a
// scroll, in slices read in parallel; they are written back with _bulk,
// several requests at once, items the server rejects for load retried
// with backoff.
package elasticsearch

import (
	"context"
	"fmt"
	"time"

	"github.com/stash-backup/stash/internal/cgroup"

	"github.com/stash-backup/stash/internal/appbinding"
)

// DefaultPort is Elasticsearch's HTTP port.
const DefaultPort = 9200

// Secret keys of an Elasticsearch AppBinding's Secret, Stash's first.
var (
	UserKeys     = []string{"ADMIN_USERNAME", "username"}
	PasswordKeys = []string{"ADMIN_PASSWORD", "password"}
)

// Options describe the server and what to do.
type Options struct {
	Conn *appbinding.Connection
	// Path is the path the file set is stored under (DefaultPath).
	Path string
	// InterimDir is the step's --interim-data-dir, where Stash's
	// multielasticdump wrote: a restore that finds no snapshot of Path
	// looks for one of Stash's paths and of this one.
	InterimDir string
	// Args are the parsed --es-args.
	Args Args
	// Dashboard backs up and restores Kibana's saved objects too
	// (--enable-dashboard), from the Kibana the AppBinding's
	// spec.parameters.dashboard.url names.
	Dashboard bool
}

// Driver is Elasticsearch as the step engine drives it.
type Driver struct{ Options }

// Wait implements addon.Driver: it returns once the server answers GET /,
// or an error after timeout.
func (d Driver) Wait(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := newClient(d.Conn)
	if err != nil {
		return err
	}
	for {
		err = c.hello(ctx)
		if err == nil || is(err, 401, "") || is(err, 403, "") {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Elasticsearch at %s did not answer within %s: %w", d.Conn.Address(), timeout, err)
		case <-time.After(time.Second):
		}
	}
}

// memoryBudget is what the documents in flight may hold, pages read and
// not yet in the repository or bulk requests built and not yet answered:
// an eighth of the pod's memory limit, 256 MiB at most (also without a
// limit), 16 MiB at least, so that --parallel and --limit cannot make a
// step outgrow its pod.
func memoryBudget() int64 {
	const most, least = 256 << 20, 16 << 20
	if limit, ok := cgroup.MemoryLimit(); ok {
		return max(min(limit/8, most), least)
	}
	return most
}
