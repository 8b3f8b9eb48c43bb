// Command galera measures the Percona XtraDB / MariaDB Galera addon's
// cluster backup and restore against the tools alone, on a real
// three-node MariaDB Galera cluster (internal/testserver):
//
//   - backup: the addon's driver (garbd, the SST received, checked and
//     stored in a local repository) against the same SST asked for by
//     garbd and received into nothing (what `socat … > /dev/null` does);
//   - restore: the driver's physical restore from that repository
//     (stream checked, mbstream -x, mariabackup --prepare, grastate.dat)
//     against mbstream -x of the same stream from a file, then
//     mariabackup --prepare; the snapshot read from the repository
//     into nothing, the data mover's share; and Stash's own way, restic
//     dump of the same stream into mbstream -x, then the prepare;
//   - what a backup costs the application: the latency of single-row
//     inserts on every node (each through the mariadb client), without a
//     backup and during one, by the node's state (Synced, Donor/Desynced).
//
// Rounds alternate which runs first; medians are reported.
//
//	go run ./hack/bench/galera -mb 512 -rounds 3
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/kopia/kopia/repo/blob/filesystem"

	"github.com/stash-backup/stash/hack/bench/benchprof"
	"github.com/stash-backup/stash/hack/bench/benchtb"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/addon/galera"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/location"
	"github.com/stash-backup/stash/internal/testserver"
)

func main() {
	mb := flag.Int("mb", 512, "MiB of table data in the cluster")
	rounds := flag.Int("rounds", 3, "rounds; medians are reported")
	verbose := flag.Bool("log", false, "log the steps (a restore's extract and prepare times)")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the run to this file (the restores: -tagfocus=phase=restore)")
	flag.Parse()
	stop, err := benchprof.Start(*prof)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer stop()
	if !*verbose {
		slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	os.Setenv("STASH_INTEGRATION", "1")
	if err := run(*mb, *rounds); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(mb, rounds int) error {
	ctx := context.Background()
	t := benchtb.New("galerabench")
	defer t.Stop()
	g := testserver.StartGalera(t, 3)
	// 1 KiB rows, loaded 32 MiB per transaction (a write set each).
	g.Nodes[0].SQL(t, "CREATE DATABASE b; CREATE TABLE b.t (id INT PRIMARY KEY, v VARCHAR(1024)) ENGINE=InnoDB; CREATE TABLE b.w (id INT PRIMARY KEY AUTO_INCREMENT, node INT, at DATETIME(6)) ENGINE=InnoDB;")
	const batch = 32 << 10
	for i := 0; i < mb<<10; i += batch {
		g.Nodes[0].SQL(t, fmt.Sprintf("INSERT INTO b.t SELECT seq, REPEAT(MD5(seq), 32) FROM b.seq_%d_to_%d", i+1, i+batch))
	}
	for _, n := range g.Nodes {
		if err := n.WaitSynced(5 * time.Minute); err != nil {
			return err
		}
	}
	arb := galera.Arbitrator{Address: g.Address(), Group: g.Name, SSTMethod: "mariabackup"}
	conn := &appbinding.Connection{Host: "127.0.0.1", Port: g.Nodes[0].Port, Username: "root", Password: g.Password}
	dir := t.TempDir()
	repo, err := repository.OpenOrInit(ctx, repository.Options{Location: &location.Location{Kind: location.KindLocal,
		Filesystem: &filesystem.Options{Path: filepath.Join(dir, "repo")}}, Password: "bench"})
	if err != nil {
		return err
	}
	defer repo.Close(ctx)
	d := galera.Driver{Options: galera.Options{Conn: conn, Arbitrator: arb, Mode: galera.Physical,
		SST: galera.SST{Arbitrator: arb, Timeout: 5 * time.Minute, LogDir: dir}}}

	// What a backup costs writers: inserts on every node for 15 s
	// without a backup, then during the first backup.
	stop := make(chan struct{})
	time.AfterFunc(15*time.Second, func() { close(stop) })
	idle := writes(g, stop)
	var during map[string][]time.Duration

	var floorB, stashB, floorR, stashR, moverR, resticR []time.Duration
	var floorRC, stashRC []time.Duration // CPU of the restores, the tools' included
	var snap repository.SnapshotStats
	var size int64
	for r := range rounds {
		backup := func() error {
			if r == 0 {
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() { during = writes(g, stop); close(done) }()
				defer func() { close(stop); <-done }()
			}
			start := time.Now()
			w := dump.NewWriter(dump.Ready(repo), repository.BackupOptions{Host: "host-0"})
			if err := d.Backup(ctx, w); err != nil {
				return err
			}
			stashB = append(stashB, time.Since(start))
			taken := w.Taken()
			snap = taken[len(taken)-1]
			return nil
		}
		floor := func() error {
			el, n, err := sstToNothing(ctx, arb, dir)
			floorB = append(floorB, el)
			size = n
			return err
		}
		first, second := backup, floor
		if r%2 == 1 {
			first, second = floor, backup
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		for _, n := range g.Nodes {
			if err := n.WaitSynced(5 * time.Minute); err != nil {
				return err
			}
		}
	}
	// The stream, as a file for the tools alone.
	s, err := repo.Reader.Resolve(ctx, snap.Name, repository.Filter{})
	if err != nil {
		return err
	}
	streamFile := filepath.Join(dir, "xtrabackup.stream")
	f, err := os.Create(streamFile)
	if err != nil {
		return err
	}
	rd := &dump.Reader{R: repo.Reader, Choose: func(context.Context, string, string) (repository.Snapshot, error) { return s, nil }}
	if err := rd.Stream(ctx, "", galera.StreamFile, f); err != nil {
		return err
	}
	f.Close()
	// Stash's own restore: restic dump into xbstream/mbstream -x, from a
	// restic repository holding the same stream (restic 0.18.1 from
	// hack/build-peers.sh, when built).
	restic := filepath.Join(testserver.RepoRoot(), "bin", "restic")
	resticRepo := filepath.Join(dir, "restic")
	resticEnv := append(os.Environ(), "RESTIC_PASSWORD=bench", "RESTIC_REPOSITORY="+resticRepo)
	if _, err := os.Stat(restic); err == nil {
		for _, args := range [][]string{{"init"}, {"backup", "--stdin", "--stdin-filename", galera.StreamFile, "--host", "host-0"}} {
			c := exec.Command(restic, args...)
			c.Env = resticEnv
			if args[0] == "backup" {
				in, err := os.Open(streamFile)
				if err != nil {
					return err
				}
				c.Stdin = in
				defer in.Close()
			}
			if out, err := c.CombinedOutput(); err != nil {
				return fmt.Errorf("restic %s: %v: %s", args[0], err, out)
			}
		}
	} else {
		restic = ""
	}
	for r := range rounds {
		if restic != "" {
			target := filepath.Join(dir, "restic-"+strconv.Itoa(r))
			if err := os.Mkdir(target, 0o750); err != nil {
				return err
			}
			start := time.Now()
			sh := exec.Command("sh", "-c", `"$0" dump latest /`+galera.StreamFile+` | mbstream -x -C "$1" && mariabackup --prepare --target-dir="$1"`, restic, target)
			sh.Env = resticEnv
			if out, err := sh.CombinedOutput(); err != nil {
				return fmt.Errorf("restic dump | mbstream: %v: %s", err, out)
			}
			resticR = append(resticR, time.Since(start))
			if err := os.RemoveAll(target); err != nil {
				return err
			}
		}
		tools := func() error {
			target := filepath.Join(dir, "tools-"+strconv.Itoa(r))
			// Each side starts with no dirty pages of the steps before
			// it, whose writeback would slow the prepare's flushes.
			syscall.Sync()
			start, c0 := time.Now(), cpu()
			if err := os.Mkdir(target, 0o750); err != nil {
				return err
			}
			x := exec.Command("mbstream", "-x", "-C", target)
			in, err := os.Open(streamFile)
			if err != nil {
				return err
			}
			x.Stdin = in
			out, err := x.CombinedOutput()
			in.Close()
			if err != nil {
				return fmt.Errorf("mbstream: %v: %s", err, out)
			}
			extracted := time.Since(start)
			if out, err := exec.Command("mariabackup", "--prepare", "--target-dir="+target).CombinedOutput(); err != nil {
				return fmt.Errorf("prepare: %v: %s", err, out)
			}
			floorR = append(floorR, time.Since(start))
			floorRC = append(floorRC, cpu()-c0)
			slog.Info("tools alone", "extract", extracted.Round(time.Millisecond), "prepare", (time.Since(start) - extracted).Round(time.Millisecond))
			return os.RemoveAll(target)
		}
		addon := func() error {
			target := filepath.Join(dir, "stash-"+strconv.Itoa(r))
			rd := galera.Driver{Options: galera.Options{DataDir: target, SSTMethod: "mariabackup", UID: -1, GID: -1}}
			syscall.Sync()
			start, c0 := time.Now(), cpu()
			var err error
			pprof.Do(ctx, pprof.Labels("phase", "restore"), func(ctx context.Context) {
				err = rd.Restore(ctx, &dump.Reader{R: repo.Reader, Choose: func(context.Context, string, string) (repository.Snapshot, error) { return s, nil }})
			})
			if err != nil {
				return err
			}
			stashR = append(stashR, time.Since(start))
			stashRC = append(stashRC, cpu()-c0)
			return os.RemoveAll(target)
		}
		first, second := addon, tools
		if r%2 == 1 {
			first, second = tools, addon
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		// The data mover alone: the snapshot read into nothing.
		start := time.Now()
		if err := rd.Stream(ctx, "", galera.StreamFile, io.Discard); err != nil {
			return err
		}
		moverR = append(moverR, time.Since(start))
	}
	fmt.Printf("cluster: 3 MariaDB 10.11 Galera nodes, %d MiB of rows, SST stream %.0f MiB, %d rounds (medians)\n", mb, float64(size)/(1<<20), rounds)
	fmt.Printf("backup   garbd + SST into nothing %6.2fs   stash %6.2fs   ratio %.2fx\n", med(floorB).Seconds(), med(stashB).Seconds(), med(stashB).Seconds()/med(floorB).Seconds())
	fmt.Printf("restore  mbstream -x + prepare    %6.2fs   stash %6.2fs   ratio %.2fx\n", med(floorR).Seconds(), med(stashR).Seconds(), med(stashR).Seconds()/med(floorR).Seconds())
	fmt.Printf("         CPU-seconds, the tools' included: tools alone %.2f, stash %.2f\n", med(floorRC).Seconds(), med(stashRC).Seconds())
	fmt.Printf("         the snapshot read into nothing (the data mover alone) %6.2fs\n", med(moverR).Seconds())
	if len(resticR) > 0 {
		fmt.Printf("         Stash's way, restic 0.18.1 dump | mbstream -x + prepare %6.2fs (%.2fx stash's time)\n", med(resticR).Seconds(), med(resticR).Seconds()/med(stashR).Seconds())
	}
	for _, c := range []struct {
		name string
		lat  map[string][]time.Duration
	}{{"without a backup", idle}, {"during a backup", during}} {
		for state, l := range c.lat {
			fmt.Printf("inserts  %-16s on a %-16s node: %5d, p50 %6.1f ms, p99 %6.1f ms, max %6.1f ms\n", c.name, state, len(l),
				float64(pct(l, 0.5).Microseconds())/1000, float64(pct(l, 0.99).Microseconds())/1000, float64(pct(l, 1).Microseconds())/1000)
		}
	}
	fmt.Printf("all      backup floor %v stash %v; restore floor %v stash %v\n", floorB, stashB, floorR, stashR)
	return nil
}

// writes inserts rows one at a time on every node until stop closes, and
// records each insert's latency by the state its node was in (Synced,
// Donor/Desynced, …), read every tenth insert: what a backup costs the
// application writing to the cluster.
func writes(g *testserver.Galera, stop <-chan struct{}) map[string][]time.Duration {
	var mu sync.Mutex
	out := map[string][]time.Duration{}
	var wg sync.WaitGroup
	for _, n := range g.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			state := "Synced"
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%10 == 0 {
					if s, err := n.Status("wsrep_local_state_comment"); err == nil {
						state = s
					}
				}
				start := time.Now()
				if _, err := n.Exec(fmt.Sprintf("INSERT INTO b.w (node, at) VALUES (%d, NOW(6))", n.Index)); err != nil {
					continue
				}
				mu.Lock()
				out[state] = append(out[state], time.Since(start))
				mu.Unlock()
			}
		}()
	}
	<-stop
	wg.Wait()
	return out
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func med(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// sstToNothing asks for the SST as an arbitrator does and reads each of
// the donor's connections into nothing, as socat into /dev/null would:
// done when a connection larger than the position-only stream ends.
func sstToNothing(ctx context.Context, arb galera.Arbitrator, dir string) (time.Duration, int64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer ln.Close()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	gport := gl.Addr().(*net.TCPAddr).Port
	gl.Close()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "garbd", "--address="+arb.Address+"?gmcast.listen_addr=tcp://127.0.0.1:"+strconv.Itoa(gport),
		"--group="+arb.Group, "--sst="+arb.SSTMethod+":"+ln.Addr().String()+"/xtrabackup_sst//1", "--log="+filepath.Join(dir, "garbd-floor.log"))
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			return 0, 0, err
		}
		n, err := io.Copy(io.Discard, c)
		c.Close()
		if err != nil {
			return 0, 0, err
		}
		if n > 64<<10 {
			return time.Since(start), n, nil
		}
	}
}

// cpu is the CPU time of this process and of the children it has waited
// for (the restore tools): what a restore costs the machine.
func cpu() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}
