package hugepage

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"testing"
)

func anonHuge(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		t.Skipf("no smaps_rollup: %v", err)
	}
	m := regexp.MustCompile(`AnonHugePages:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no AnonHugePages in smaps_rollup:\n%s", b)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10
}

var sink []byte

// TestEnableBacksHeapWithHugePages: after Enable, a fresh 64 MiB
// allocation, touched, is (mostly) backed by huge pages.
func TestEnableBacksHeapWithHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || bytes.Contains(mode, []byte("[never]")) {
		t.Skipf("transparent huge pages are off on this kernel (%q)", mode)
	}
	before, fallbackBefore := anonHuge(t), vmstat(t, "thp_fault_fallback")
	advised, err := Enable(DefaultReserve)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(min(DefaultReserve, cgroupLimit()/4, memTotal()/4)); advised < want {
		t.Fatalf("advised %d bytes, want at least the %d reserved", advised, want)
	}
	sink = make([]byte, 64<<20)
	for i := 0; i < len(sink); i += 4096 {
		sink[i] = 1
	}
	// Half is plenty to show the advice took effect.
	if got := anonHuge(t) - before; got < 32<<20 {
		// The kernel falls back to small pages when it has no free huge
		// page at hand; that is the machine, not the advice.
		if fb := vmstat(t, "thp_fault_fallback") - fallbackBefore; fb > 0 {
			t.Skipf("the kernel had no huge pages to give (%d fallbacks)", fb)
		}
		t.Fatalf("64 MiB touched after Enable; %d bytes of it on huge pages", got)
	}
}

func vmstat(t *testing.T, key string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		t.Skipf("no /proc/vmstat: %v", err)
	}
	m := regexp.MustCompile(`(?m)^` + key + ` (\d+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

func TestMemTotal(t *testing.T) {
	// This machine kind has 24 GiB; any Linux machine has more than 64 MiB
	// and less than 64 TiB.
	if n := memTotal(); n < 64<<20 || n > 64<<40 {
		t.Fatalf("memTotal = %d", n)
	}
}
