// Package cgroup reads the memory limit of the cgroup this process runs in
// (v1 and v2), so that a step in a pod sizes its buffers by the pod's
// limit, not by the node it happens to run on.
package cgroup

import (
	"bufio"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

// unlimited is the smallest value taken to mean "no limit": v1 reports a
// page-rounded 2^63-1 when none is set.
const unlimited = int64(1) << 60

// MemoryLimit returns the memory limit of this process's cgroup and its
// ancestors (the smallest), and whether there is one.
func MemoryLimit() (int64, bool) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	defer f.Close() //nolint:errcheck
	return memoryLimit(f, "/sys/fs/cgroup", os.ReadFile)
}

// memoryLimit is MemoryLimit over a /proc/self/cgroup listing, a cgroup
// file system root and a file reader, for tests.
func memoryLimit(procCgroup io.Reader, root string, read func(string) ([]byte, error)) (int64, bool) {
	v1, v2, hasV1, hasV2 := paths(procCgroup)
	var candidates []string
	if hasV2 {
		for _, dir := range ancestors(v2) {
			candidates = append(candidates, path.Join(root, dir, "memory.max"), path.Join(root, "unified", dir, "memory.max"))
		}
	}
	if hasV1 {
		for _, dir := range ancestors(v1) {
			candidates = append(candidates, path.Join(root, "memory", dir, "memory.limit_in_bytes"))
		}
	}
	best, found := int64(0), false
	for _, p := range candidates {
		b, err := read(p)
		if err != nil {
			continue
		}
		if v, ok := parse(string(b)); ok && (!found || v < best) {
			best, found = v, true
		}
	}
	return best, found
}

// paths returns the v1 memory controller's and the v2 unified hierarchy's
// cgroup paths from /proc/self/cgroup.
func paths(r io.Reader) (v1, v2 string, hasV1, hasV2 bool) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2, hasV2 = parts[2], true
		case contains(strings.Split(parts[1], ","), "memory"):
			v1, hasV1 = parts[2], true
		}
	}
	return v1, v2, hasV1, hasV2
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// ancestors lists dir and every parent up to "/": a parent's limit binds
// its children too (and inside a cgroup namespace the own path is "/").
func ancestors(dir string) []string {
	dir = path.Clean("/" + dir)
	out := []string{dir}
	for dir != "/" {
		dir = path.Dir(dir)
		out = append(out, dir)
	}
	return out
}

// parse reads a limit file: a byte count, or "max" (v2) or a huge number
// (v1) for none.
func parse(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "max" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v >= unlimited {
		return 0, false
	}
	return v, true
}
