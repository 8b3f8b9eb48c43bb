package testserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// startListening starts cmd, a server that logs to its standard output
// and error (kept in a file of the test's), kills it when the test ends,
// and returns once it accepts connections on 127.0.0.1:port, or fails the
// test with its log after 30 s.
func startListening(t testing.TB, name string, cmd *exec.Cmd, port int) {
	t.Helper()
	startListeningOn(t, name, cmd, "127.0.0.1", port)
}

// startListeningOn is startListening for a server listening on host.
func startListeningOn(t testing.TB, name string, cmd *exec.Cmd, host string, port int) {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(host, fmt.Sprint(port)), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s did not listen: %v\n%s", name, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
