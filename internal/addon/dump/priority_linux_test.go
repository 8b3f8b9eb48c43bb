package dump

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// niceOf reads the nice value of a process or thread from its stat file
// (the 19th field; the command name before it may hold spaces).
func niceOf(stat string) (int, error) {
	b, err := os.ReadFile(stat)
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 17 {
		return 0, fmt.Errorf("%s: %d fields after the name", stat, len(f))
	}
	return strconv.Atoi(f[16])
}

// printNice is a tool that prints its own nice value.
const printNice = `cut -d' ' -f19 /proc/$$/stat` // sh's name has no space

// TestYieldCPUHelper is the process TestYieldCPU inspects: it runs two
// dump tools in sequence and then a restore client, the way a backup and a
// restore start them, and prints the tools' and its own threads' nice
// values.
func TestYieldCPUHelper(t *testing.T) {
	if os.Getenv("STASH_TEST_YIELD_HELPER") != "1" {
		t.Skip("run by TestYieldCPU")
	}
	tool := func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, "sh", "-c", printNice) }
	pr, pw, err := newOutputPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := runSeq(context.Background(), []func(context.Context) *exec.Cmd{tool, tool}, pw); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var out bytes.Buffer
	if _, err := out.ReadFrom(pr); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Fields(out.String()) {
		fmt.Println("tool", l)
	}
	client := exec.Command("sh", "-c", printNice)
	var cout bytes.Buffer
	client.Stdout = &cout
	stdin, err := StartWithStdin(client)
	if err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if err := client.Wait(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("tool", strings.TrimSpace(cout.String()))
	fmt.Println("launcher", theLauncher().tid)
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n, err := niceOf("/proc/self/task/" + e.Name() + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("thread", e.Name(), n)
	}
}

// TestYieldCPU: once a dump tool or a restore client runs, every thread of
// stash but one lowers its priority by STASH_DUMP_NICE (10 by default),
// while the tools, also those started afterwards, keep the priority stash
// started with. The helper runs in its own process because the change is
// for the process's whole life.
func TestYieldCPU(t *testing.T) {
	base, err := niceOf("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env string
		inc int
	}{{"", defaultNice}, {"3", 3}, {"0", 0}} {
		t.Run("STASH_DUMP_NICE="+tc.env, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestYieldCPUHelper$", "-test.v")
			cmd.Env = append(os.Environ(), "STASH_TEST_YIELD_HELPER=1", niceEnv+"="+tc.env)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			want := min(base+tc.inc, 19)
			var tools, launcher, yielded int
			threads := map[string]int{}
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				switch {
				case len(f) == 2 && f[0] == "tool":
					tools++
					if n, err := strconv.Atoi(f[1]); err != nil || n != base {
						t.Errorf("tool %d runs at nice %d, want %d (stash's own)", tools, n, base)
					}
				case len(f) == 2 && f[0] == "launcher":
					launcher, _ = strconv.Atoi(f[1])
				case len(f) == 3 && f[0] == "thread":
					threads[f[1]], _ = strconv.Atoi(f[2])
				}
			}
			if tools != 3 || launcher == 0 || len(threads) < 3 {
				t.Fatalf("helper printed %d tools, launcher %d, %d threads:\n%s", tools, launcher, len(threads), out)
			}
			for tid, n := range threads {
				switch {
				case tid == strconv.Itoa(launcher):
					if n != base {
						t.Errorf("launcher thread at nice %d, want %d", n, base)
					}
				case n != want:
					t.Errorf("thread %s at nice %d, want %d", tid, n, want)
				default:
					yielded++
				}
			}
			if yielded != len(threads)-1 {
				t.Errorf("%d of %d threads yielded:\n%s", yielded, len(threads), out)
			}
		})
	}
}

func TestMoverNice(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    int
		wantErr bool
	}{
		{"", defaultNice, false},
		{"0", 0, false},
		{"19", 19, false},
		{"20", 0, true},
		{"-1", 0, true},
		{"ten", 0, true},
	} {
		t.Setenv(niceEnv, tc.env)
		got, err := moverNice()
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s=%q: %d, %v; want %d, error %v", niceEnv, tc.env, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), niceEnv) {
			t.Errorf("error %q does not name %s", err, niceEnv)
		}
	}
}
