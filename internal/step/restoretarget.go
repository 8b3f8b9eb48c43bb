package step

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/source"
)

// reservedDir is a directory of the step itself that no restore may
// write into, over or above.
type reservedDir struct {
	what, path string
}

// reservedDirs are the step's own directories: the scratch volume (it
// holds output.json, which the next step turns into the session's status,
// and TLS files), the output and secret directories, and a local backend's
// directory (the repository itself).
func (o *Options) reservedDirs(ctx context.Context, src source.Source) []reservedDir {
	out := []reservedDir{
		{"the scratch volume", plan.ScratchDir},
		{"the scratch directory (--scratch-dir)", o.ScratchDir},
		{"the output directory (--output-dir)", o.OutputDir},
		{"the storage Secret's directory (--secret-dir)", o.SecretDir},
	}
	switch {
	case o.Provider == "local":
		out = append(out, reservedDir{"the local backend (--bucket)", o.Bucket})
	case o.Repository != "" && src != nil:
		if r, err := src.Repository(ctx, o.Namespace, o.Repository); err == nil && r.Spec.Backend.Local != nil {
			out = append(out, reservedDir{"the local backend of Repository " + o.Repository, r.Spec.Backend.Local.MountPath})
		}
	}
	return out
}

// checkRestoreDestination decides whether restore-pvc may restore a
// snapshot to dest, the path the snapshot records (a directory snapshot
// goes back where it was taken). That path is data from the repository,
// so it must be a clean absolute path other than "/", under one of
// allowed (--restore-paths) when any are given, and clear of every
// reserved directory: not one of them, not inside one, not above one,
// compared both as written and with symlinks resolved.
func checkRestoreDestination(dest string, allowed []string, reserved []reservedDir) error {
	switch {
	case strings.ContainsRune(dest, 0) || !filepath.IsAbs(dest) || filepath.Clean(dest) != dest:
		return fmt.Errorf("the snapshot records the path %q, which is not a clean absolute path: a backup records the absolute directory it read, so the snapshot was altered; restore-pvc refuses it", dest)
	case dest == string(filepath.Separator):
		return errors.New(`the snapshot records the path "/": restore-pvc never restores over the whole file system; restore it with "stash repo restore --target DIR" instead`)
	}
	if len(allowed) > 0 {
		ok := false
		for _, a := range allowed {
			if a = filepath.Clean(a); dest == a || within(dest, a) {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("the snapshot records the path %s, which is not under --restore-paths (%s): restore-pvc writes only to the paths it is asked to restore; add the path to the RestoreSession's target paths if it is the one you mean", dest, strings.Join(allowed, ","))
		}
	}
	physical := resolveExisting(dest)
	for _, r := range reserved {
		if r.path == "" {
			continue
		}
		rp := filepath.Clean(r.path)
		if overlaps(dest, rp) || overlaps(physical, resolveExisting(rp)) {
			return fmt.Errorf("the snapshot records the path %s, and restoring it would write over %s (%s): refused; restore such a snapshot with \"stash repo restore --target DIR\" into another directory", dest, r.what, rp)
		}
	}
	return nil
}

// within reports whether p lies strictly inside dir.
func within(p, dir string) bool {
	if dir == string(filepath.Separator) {
		return p != dir && strings.HasPrefix(p, dir)
	}
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

func overlaps(a, b string) bool { return a == b || within(a, b) || within(b, a) }

// resolveExisting resolves the symlinks of p's longest existing ancestor
// and appends the rest, so that a path reached through a symlink compares
// as where it lands.
func resolveExisting(p string) string {
	rest := ""
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
