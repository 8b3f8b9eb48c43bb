package testserver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on, for a
// server the test starts next. It comes from below the kernel's ephemeral
// range: a port from that range (what listening on port 0 gives) may become
// the source port of any outgoing connection on the machine between this
// check and the server's own listen, and a test failed on exactly that
// ("bind: address already in use") while other test packages ran.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := freeRange()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatalf("no free TCP port in %d-%d", lo, hi)
	return 0
}

// freeRange is where FreePort looks: 10 000 ports below both the
// ephemeral range (by default from 32768) and Kubernetes' NodePort range
// (30000-32767), which the test cluster's services may use.
func freeRange() (lo, hi int) {
	hi = 30000
	var start, end int
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if _, err := fmt.Sscan(string(b), &start, &end); err == nil && start < hi {
			hi = start
		}
	}
	return max(1024, hi-10000), hi
}

// HostIP returns this machine's address on its default route: where a
// server listens for clients in containers and pods, which cannot reach
// its loopback.
func HostIP(t testing.TB) string {
	t.Helper()
	// A UDP "connection" sends nothing; it only picks the source address.
	c, err := net.Dial("udp", "192.0.2.1:9")
	if err != nil {
		t.Fatalf("no default route to find this machine's address: %v", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}
