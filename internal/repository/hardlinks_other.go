//go:build !unix

package repository

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Relink makes each group of files a restore wrote under target (paths
// relative to it) hard links of the group's first file again. Only pass
// files the restore wrote: a file of the group it left out (by include or
// exclude) may exist in the target, and is not the restore's to replace.
// Each path is checked for symlinks before it is used (not race-free
// here, unlike the unix version), and each link is made under a temporary
// name and renamed over the file, so a failure leaves the restored copy.
func Relink(target string, groups [][]string) error {
	for _, rels := range groups {
		var first string
		for _, rel := range rels {
			p, ok := restoredFile(target, rel)
			if !ok {
				continue
			}
			if first == "" {
				first = p
				continue
			}
			tmp := filepath.Join(filepath.Dir(p), ".stash-link-"+filepath.Base(p))
			if err := os.Link(first, tmp); err != nil {
				return fmt.Errorf("hard link %s: %w", rel, err)
			}
			if err := os.Rename(tmp, p); err != nil {
				os.Remove(tmp)
				return fmt.Errorf("hard link %s: %w", rel, err)
			}
		}
	}
	return nil
}

// restoredFile returns target/rel when it is a regular file reached
// through directories only.
func restoredFile(target, rel string) (string, bool) {
	p := target
	parts := strings.Split(rel, "/")
	for i, part := range parts {
		p = filepath.Join(p, part)
		st, err := os.Lstat(p)
		if err != nil {
			return "", false
		}
		if i < len(parts)-1 && !st.IsDir() || i == len(parts)-1 && !st.Mode().IsRegular() {
			return "", false
		}
	}
	return p, true
}
