package postgres

import (
	"context"
	"crypto/rand"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
)

// restrictSince is the first minor release of each major version whose
// psql has \restrict (August 2025); every release from 18 on has it.
var restrictSince = map[int]int{13: 22, 14: 19, 15: 14, 16: 10, 17: 6}

var psqlVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?(\S*)`)

// hasRestrict reads `psql --version` output.
func hasRestrict(version string) bool {
	m := psqlVersion.FindStringSubmatch(version)
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if m[3] != "" && m[2] == "" {
		// 18beta1, 19devel: only releases from 19 on are sure to have it.
		return major >= 19
	}
	if major >= 18 {
		return true
	}
	since, ok := restrictSince[major]
	return ok && minor >= since
}

var restricts sync.Map // psql path → bool

// psqlRestricts reports whether the psql at path has \restrict, asking it
// once per process.
func psqlRestricts(ctx context.Context, path string) bool {
	if v, ok := restricts.Load(path); ok {
		return v.(bool)
	}
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	ok := err == nil && hasRestrict(string(out))
	if err == nil {
		restricts.Store(path, ok)
	}
	return ok
}

// restrictKey is a fresh key for psql's \restrict: 26 base32 letters and
// digits (130 bits) from the system's random source, which no dump can
// guess.
func restrictKey() string { return rand.Text() }
