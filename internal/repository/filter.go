package repository

import (
	"path"
	"strings"
)

// matcher decides which paths of a snapshot a restore writes. Paths are
// relative to the snapshot root, slash-separated. A pattern without a slash
// matches a file or directory name at any depth ("*.log"); a pattern with a
// slash is anchored at the root ("data/2024/*"). A matching directory
// matches everything below it.
type matcher struct {
	include []string
	exclude []string
}

func anchored(p string) bool { return strings.Contains(strings.TrimSuffix(p, "/"), "/") }

func cleanPattern(p string) string {
	return strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
}

// matchOne reports whether pattern p matches rel itself.
func matchOne(p, rel string) bool {
	p = cleanPattern(p)
	if anchored(p) {
		ok, _ := path.Match(p, rel)
		return ok
	}
	ok, _ := path.Match(p, path.Base(rel))
	return ok
}

// matchSelfOrAncestor reports whether p matches rel or a directory above it.
func matchSelfOrAncestor(p, rel string) bool {
	for cur := rel; cur != "." && cur != ""; cur = path.Dir(cur) {
		if matchOne(p, cur) {
			return true
		}
	}
	return false
}

func (m matcher) excluded(rel string) bool {
	for _, p := range m.exclude {
		if matchSelfOrAncestor(p, rel) {
			return true
		}
	}
	return false
}

// includedWhole reports whether rel lies inside an include match.
func (m matcher) includedWhole(rel string) bool {
	if len(m.include) == 0 {
		return true
	}
	for _, p := range m.include {
		if matchSelfOrAncestor(p, rel) {
			return true
		}
	}
	return false
}

func (m matcher) fileWanted(rel string) bool {
	return !m.excluded(rel) && m.includedWhole(rel)
}

// dirWanted reports whether directory rel must be walked: it is not
// excluded and something inside it may be included.
func (m matcher) dirWanted(rel string) bool {
	if m.excluded(rel) {
		return false
	}
	if m.includedWhole(rel) {
		return true
	}
	depth := strings.Count(rel, "/") + 1
	for _, p := range m.include {
		p = cleanPattern(p)
		if !anchored(p) {
			return true // a name pattern may match at any depth
		}
		parts := strings.Split(p, "/")
		if len(parts) <= depth {
			continue
		}
		if ok, _ := path.Match(strings.Join(parts[:depth], "/"), rel); ok {
			return true
		}
	}
	return false
}
