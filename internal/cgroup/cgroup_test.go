package cgroup

import (
	"os"
	"strings"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if v, ok := m[p]; ok {
				return []byte(v), nil
			}
			return nil, os.ErrNotExist
		}
	}
	for _, tc := range []struct {
		name  string
		proc  string
		files map[string]string
		want  int64
		ok    bool
	}{
		{"v2 in a cgroup namespace", "0::/\n", map[string]string{"/sys/fs/cgroup/memory.max": "268435456\n"}, 256 << 20, true},
		{"v2 unlimited", "0::/\n", map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 0, false},
		{"v2 parent binds", "0::/kubepods/pod1/ctr\n", map[string]string{
			"/sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "max", "/sys/fs/cgroup/kubepods/pod1/memory.max": "536870912"}, 512 << 20, true},
		{"v2 smallest of several", "0::/a/b\n", map[string]string{
			"/sys/fs/cgroup/a/b/memory.max": "1073741824", "/sys/fs/cgroup/a/memory.max": "536870912"}, 512 << 20, true},
		{"v1 memory controller", "4:memory:/process_api/x\n3:cpuset:/\n0::/\n", map[string]string{
			"/sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": "9223372036854771712",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes":               "9223372036854771712"}, 0, false},
		{"v1 limited", "5:cpuacct,memory:/pod\n", map[string]string{"/sys/fs/cgroup/memory/pod/memory.limit_in_bytes": "536870912"}, 512 << 20, true},
		{"nothing readable", "0::/\n", nil, 0, false},
		{"garbage", "0::/\n", map[string]string{"/sys/fs/cgroup/memory.max": "lots"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := memoryLimit(strings.NewReader(tc.proc), "/sys/fs/cgroup", files(tc.files))
			if got != tc.want || ok != tc.ok {
				t.Errorf("memoryLimit = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestThisMachine reads the real files: whatever they say, the call works
// and a limit found is positive.
func TestThisMachine(t *testing.T) {
	if v, ok := MemoryLimit(); ok && v <= 0 {
		t.Errorf("limit %d", v)
	}
}
