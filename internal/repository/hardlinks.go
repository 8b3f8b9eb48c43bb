package repository

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"sync"
)

// A snapshot imported from a restic repository records the hard links
// restic saw, so that a restore links those files again: kopia's
// snapshots have no links of their own (its uploader stores each path as
// a file, the content once).
//
// They go in the manifest's tags, under a key outside tagPrefix so that
// they are never shown or matched as a Stash tag. A side object would be
// collected by kopia's maintenance as unreferenced.
const linksTag = "links:v1"

// maxLinksBytes bounds the recorded links (paths as JSON): a hundred
// thousand linked paths fit. A manifest is read whenever snapshots are
// listed, so it must stay small.
const maxLinksBytes = 8 << 20

// encodeLinks gives the tag value of groups (each a list of paths,
// relative to the snapshot's root, of one file).
func encodeLinks(groups [][]string) (string, error) {
	var keep [][]string
	for _, g := range groups {
		if len(g) > 1 {
			keep = append(keep, g)
		}
	}
	if len(keep) == 0 {
		return "", nil
	}
	b, err := json.Marshal(keep)
	if err != nil {
		return "", err
	}
	if len(b) > maxLinksBytes {
		return "", fmt.Errorf("%d groups of hard links take %d bytes of paths, more than the %d a snapshot records", len(keep), len(b), maxLinksBytes)
	}
	return string(b), nil
}

// decodeLinks reads a snapshot's links tag. The tag comes from the
// repository, which whoever holds its bucket can write: every path must
// be relative and clean, and a restore links only files it wrote itself
// (Relink).
func decodeLinks(v string) ([][]string, error) {
	if v == "" {
		return nil, nil
	}
	if len(v) > maxLinksBytes {
		return nil, fmt.Errorf("the snapshot's hard links take %d bytes, more than %d", len(v), maxLinksBytes)
	}
	var groups [][]string
	if err := json.Unmarshal([]byte(v), &groups); err != nil {
		return nil, fmt.Errorf("the snapshot's hard links: %w", err)
	}
	for _, g := range groups {
		for _, p := range g {
			if p == "" || strings.ContainsRune(p, 0) || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
				return nil, fmt.Errorf("the snapshot's hard links name %q, not a path inside the snapshot", p)
			}
		}
	}
	return groups, nil
}

// writtenFiles records the files a restore put in place (their paths on
// disk, relative to the target), for Relink.
type writtenFiles struct {
	mu sync.Mutex
	m  map[string]bool
}

func (w *writtenFiles) add(rel string) {
	w.mu.Lock()
	w.m[rel] = true
	w.mu.Unlock()
}

// only returns groups limited to the files written (LinksAmong).
func (w *writtenFiles) only(groups [][]string) [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return LinksAmong(groups, w.m)
}

// LinksAmong returns groups of linked paths limited to the paths in
// among (the files a restore wrote), in their order, dropping the groups
// left with fewer than two.
func LinksAmong(groups [][]string, among map[string]bool) [][]string {
	var out [][]string
	for _, g := range groups {
		var got []string
		for _, p := range g {
			if among[p] {
				got = append(got, p)
			}
		}
		if len(got) > 1 {
			out = append(out, got)
		}
	}
	return out
}
