package galera

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stash-backup/stash/internal/addon/dump"
)

// SST asks a Galera cluster for a state snapshot as an arbitrator would,
// and receives it.
//
// How a snapshot arrives (verified against MariaDB 10.11 and Galera 26.4,
// ../shared/reference/test-servers.md): garbd joins, asks for an SST
// naming a receive address, and exits 0 as soon as a donor accepts. The
// donor's SST script then connects to the receive address twice: first a
// small xbstream holding only the donor's Galera position, then, once the
// backup tool runs, the data as one xbstream ending with the tool's
// completion marker. Donors of other versions may send the data alone, so
// a first stream is treated as the position only when it is small and has
// no completion marker.
type SST struct {
	Arbitrator Arbitrator
	// ListenIP is the address the donor connects to and garbd listens
	// on: one the cluster's nodes can reach (empty: the address this
	// host reaches the first member from).
	ListenIP string
	// GarbdPort is garbd's group port (0: a free one).
	GarbdPort int
	// Timeout bounds each wait: for garbd to join and a donor to
	// accept, and for each of the donor's connections.
	Timeout time.Duration
	// Garbd is the garbd program (empty: garbd).
	Garbd string
	// LogDir holds garbd's log while it runs (removed after).
	LogDir string
	// GarbdOptions are extra Galera options for garbd (TLS: socket.ssl_*).
	GarbdOptions []string
}

// infoLimit is the most a position-only stream holds.
const infoLimit = 64 << 10

// Receive runs garbd, receives the SST and writes its data stream to w,
// checked (Checker): it returns nil only when the stream was complete.
// garbd never outlives it.
func (s SST) Receive(ctx context.Context, w io.Writer) (*Checker, error) {
	members, err := s.Arbitrator.Members()
	if err != nil {
		return nil, err
	}
	if _, err := ToolsFor(s.Arbitrator.SSTMethod); err != nil {
		return nil, err
	}
	ip := s.ListenIP
	if ip == "" {
		if ip, err = localIPFor(members[0]); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, fmt.Errorf("SST receive address: %w", err)
	}
	defer ln.Close()
	gport := s.GarbdPort
	if gport == 0 {
		if gport, err = freePort(ip); err != nil {
			return nil, err
		}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	recv := ln.Addr().String()
	logFile := filepath.Join(orTemp(s.LogDir), "garbd-"+strconv.Itoa(os.Getpid())+".log")
	defer os.Remove(logFile)
	// The request garbd sends: the method, where to send, and the
	// xtrabackup SST script's "xtrabackup_sst//1" (a protocol version).
	args := garbdArgs(s.Arbitrator, net.JoinHostPort(ip, strconv.Itoa(gport)), logFile, s.GarbdOptions,
		"--sst="+s.Arbitrator.SSTMethod+":"+recv+"/xtrabackup_sst//1")
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	start := time.Now()
	garbdDone, err := startGarbd(gctx, orStr(s.Garbd, "garbd"), args)
	if err != nil {
		return nil, err
	}
	defer func() {
		stop()
		<-garbdDone
	}()
	slog.Info("asked the cluster for a state snapshot", "group", s.Arbitrator.Group, "method", s.Arbitrator.SSTMethod, "receive", recv)

	conns := make(chan net.Conn)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			select {
			case conns <- c:
			case <-gctx.Done():
				c.Close()
				return
			}
		}
	}()
	garbdLog := func() string {
		b, _ := os.ReadFile(logFile)
		return dump.RedactTail(lastLines(string(b), 8))
	}
	garbdExited := false
	wait := func() (net.Conn, error) {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		for {
			var gd <-chan error
			if !garbdExited {
				gd = garbdDone
			}
			select {
			case c := <-conns:
				return c, nil
			case err := <-gd:
				garbdExited = true
				// garbd exits 0 once a donor accepted; anything else
				// means no donor will come. The result goes back for
				// the deferred wait.
				garbdDone <- err
				if err != nil {
					return nil, fmt.Errorf("garbd failed before a donor connected: %v: %s", err, garbdLog())
				}
			case err := <-acceptErr:
				return nil, err
			case <-timer.C:
				if !garbdExited {
					return nil, fmt.Errorf("no donor accepted the SST request within %s (is the group %q right, and can the nodes reach %s?): %s", timeout, s.Arbitrator.Group, ip, garbdLog())
				}
				return nil, fmt.Errorf("the donor did not connect within %s of accepting the SST request", timeout)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	for {
		c, err := wait()
		if err != nil {
			return nil, err
		}
		chk, done, err := s.take(ctx, c, w, timeout)
		if err != nil || done {
			if err == nil {
				slog.Info("state snapshot received", "bytes", chk.Bytes(), "files", chk.Files(), "took", time.Since(start).Round(time.Millisecond))
			}
			return chk, err
		}
	}
}

// take reads one of the donor's connections. A small stream without the
// completion marker is the donor's position only (done false); anything
// else is the data, written to w and checked.
func (s SST) take(ctx context.Context, c net.Conn, w io.Writer, idle time.Duration) (*Checker, bool, error) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	src := &idleReader{c: c, idle: idle}
	var head bytes.Buffer
	probe := NewChecker(&head)
	_, err := io.CopyN(probe, src, infoLimit)
	if err == io.EOF {
		if probe.Close() != nil && !probe.files[CompletionMarker] && probe.state == stMagic {
			if pos, ok := probe.Position(); ok {
				slog.Info("donor's position received", "uuid", pos.UUID, "seqno", pos.Seqno)
			}
			return nil, false, nil
		}
	} else if err != nil {
		return nil, false, fmt.Errorf("SST stream: %w", err)
	}
	chk := NewChecker(w)
	if _, err := chk.Write(head.Bytes()); err != nil {
		return nil, true, err
	}
	if _, err := io.Copy(chk, src); err != nil {
		return nil, true, fmt.Errorf("SST stream after %d bytes: %w", chk.Bytes(), err)
	}
	if err := chk.Close(); err != nil {
		return nil, true, fmt.Errorf("the donor's stream ended early (did the donor stop?): %w", err)
	}
	return chk, true, nil
}

// garbdArgs is garbd's command line: it joins a's group listening on
// listen, logs to logFile, with Galera options and further arguments.
//
// Its weight is 0: the step's garbd must never count in the cluster's
// quorum. Its departure (when it exits after a donor accepted, or when
// stopped) is a membership change of its own, and the members recorded a
// stopped garbd as partitioned, not as having left; with a weight of 1, a
// node lost in that moment (a donor that dies as the SST starts) would
// leave a three-node cluster 2 of the 4 votes it knew: no majority,
// non-Primary, refusing writes.
func garbdArgs(a Arbitrator, listen, logFile string, options []string, more ...string) []string {
	args := []string{"--address=" + a.garbdAddress(listen), "--group=" + a.Group, "--log=" + logFile,
		"--options=" + strings.Join(append([]string{"pc.weight=0"}, options...), ";")}
	return append(args, more...)
}

// garbdGrace is how long garbd has once asked to stop (SIGTERM, on which
// it closes its group connection and logs why) before it is killed.
const garbdGrace = 10 * time.Second

// startGarbd starts garbd with args. When ctx ends, garbd is asked to
// stop and killed if it is still running garbdGrace later; its exit
// status arrives on the returned channel (buffered: a reader may put it
// back for another). It runs in a process group of its own that the
// kernel kills with the step: garbd never stays in the cluster after it.
func startGarbd(ctx context.Context, bin string, args []string) (chan error, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = garbdProcAttr()
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = garbdGrace
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start garbd: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done, nil
}

// idleReader fails a read that waits longer than idle: a donor that
// stops sending without closing must not hold the step forever.
type idleReader struct {
	c    net.Conn
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(r.idle))
	n, err := r.c.Read(p)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		err = fmt.Errorf("the donor sent nothing for %s: %w", r.idle, err)
	}
	return n, err
}

// localIPFor returns the address of this host that reaches member: the
// one the donor can connect back to.
func localIPFor(member string) (string, error) {
	host := member
	if h, _, err := net.SplitHostPort(member); err == nil {
		host = h
	}
	c, err := net.Dial("udp", net.JoinHostPort(strings.Trim(host, "[]"), "4567"))
	if err != nil {
		return "", fmt.Errorf("find the address the cluster reaches this step at (member %s): %w", member, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func orTemp(dir string) string {
	if dir == "" {
		return os.TempDir()
	}
	return dir
}

func orStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
