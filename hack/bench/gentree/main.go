// Command gentree writes a deterministic benchmark directory tree: -files
// small files of 1-64 KiB (half log-like text, half random bytes), 100 to a
// directory, three directory levels deep, plus -large large files (even ones
// text, odd ones random) in large/. The same flags and -seed always give the
// same paths and contents.
//
// With -change P it writes instead only the files of the changed variant of
// that tree: P percent of the small files (spread evenly) with new contents,
// and large/large-1.dat with three of its 1 MiB blocks replaced. Copied over
// a copy of the tree, they make the tree with P percent of its files changed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
)

const (
	block   = 1 << 20
	perDir  = 100
	minSize = 1 << 10
	maxSize = 64 << 10
	// changeSeed is mixed into -seed for the contents of changed files.
	changeSeed = 0x9e3779b97f4a7c15
)

func main() {
	out := flag.String("out", "", "directory to write the tree into (created)")
	files := flag.Int("files", 50000, "number of small files")
	large := flag.Int("large", 4, "number of large files")
	largeSize := flag.Int64("large-size", 64<<20, "size of each large file in bytes")
	change := flag.Float64("change", 0, "write only the files of the variant with this percent of files changed")
	seed := flag.Uint64("seed", 42, "random seed")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gentree: -out is required")
		os.Exit(2)
	}

	g := gen{out: *out, seed: *seed}
	every := 0
	if *change > 0 {
		every = max(1, int(100 / *change))
	}
	// Directories first, so the writers need not create them.
	ndirs := (*files + perDir - 1) / perDir
	for d := range ndirs {
		if every == 0 || dirHasChange(d, every, *files) {
			g.check(os.MkdirAll(filepath.Join(g.out, leafDir(d)), 0o755))
		}
	}
	g.check(os.MkdirAll(filepath.Join(g.out, "large"), 0o755))

	jobs := make(chan int, 1024)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := range jobs {
				if i < 0 {
					g.largeFile(-i-1, *largeSize, every > 0)
					continue
				}
				buf = g.smallFile(buf[:0], i, every > 0)
			}
		}()
	}
	for l := range *large {
		if every == 0 || l == 1 {
			jobs <- -l - 1
		}
	}
	for i := range *files {
		if every == 0 || i%every == every/2 {
			jobs <- i
		}
	}
	close(jobs)
	wg.Wait()
}

// dirHasChange reports whether leaf directory d holds a changed file.
func dirHasChange(d, every, files int) bool {
	for i := d * perDir; i < min((d+1)*perDir, files); i++ {
		if i%every == every/2 {
			return true
		}
	}
	return false
}

// leafDir is the directory of the small files d*perDir to (d+1)*perDir-1.
func leafDir(d int) string {
	return fmt.Sprintf("d%02d/d%d/d%d", d/100, d/10%10, d%10)
}

type gen struct {
	out  string
	seed uint64
}

func (g gen) check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentree:", err)
		os.Exit(1)
	}
}

// smallFile writes small file i (its changed contents if changed) and
// returns buf for reuse. Its kind, and so its name, never changes.
func (g gen) smallFile(buf []byte, i int, changed bool) []byte {
	rng := rand.New(rand.NewPCG(g.seed, uint64(i)))
	text := rng.IntN(2) == 0
	if changed {
		rng = rand.New(rand.NewPCG(g.seed^changeSeed, uint64(i)))
	}
	size := minSize + rng.IntN(maxSize-minSize+1)
	if text {
		buf = appendText(buf, rng, size)
	} else {
		buf = appendRandom(buf, rng, size)
	}
	ext := ".bin"
	if text {
		ext = ".log"
	}
	name := filepath.Join(g.out, leafDir(i/perDir), fmt.Sprintf("f%06d%s", i, ext))
	g.check(os.WriteFile(name, buf, 0o644))
	return buf
}

// largeFile writes large file l in 1 MiB blocks; changed, three of them
// (at a quarter, half and three quarters of the file) get new contents.
func (g gen) largeFile(l int, size int64, changed bool) {
	f, err := os.Create(filepath.Join(g.out, "large", fmt.Sprintf("large-%d.dat", l)))
	g.check(err)
	w := bufio.NewWriterSize(f, 4<<20)
	nblocks := (size + block - 1) / block
	buf := make([]byte, 0, block+256)
	for b := range nblocks {
		s := g.seed
		if changed && (b == nblocks/4 || b == nblocks/2 || b == 3*nblocks/4) {
			s ^= changeSeed
		}
		rng := rand.New(rand.NewPCG(s, uint64(1)<<40|uint64(l)<<24|uint64(b)))
		n := min(size-b*block, block)
		if l%2 == 0 {
			buf = appendText(buf[:0], rng, int(n))
		} else {
			buf = appendRandom(buf[:0], rng, int(n))
		}
		_, err := w.Write(buf)
		g.check(err)
	}
	g.check(w.Flush())
	g.check(f.Close())
}

var (
	levels = [...]string{"DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR"}
	paths  = [...]string{"/api/v1/orders", "/api/v1/customers", "/api/v1/items", "/healthz", "/api/v2/search", "/login"}
)

// appendText appends size bytes of log-like lines.
func appendText(buf []byte, rng *rand.Rand, size int) []byte {
	start := len(buf)
	for len(buf)-start < size {
		buf = append(buf, "2026-0"...)
		buf = strconv.AppendInt(buf, int64(1+rng.IntN(9)), 10)
		buf = append(buf, "-1"...)
		buf = strconv.AppendInt(buf, int64(rng.IntN(9)), 10)
		buf = append(buf, 'T', byte('0'+rng.IntN(2)), byte('0'+rng.IntN(10)), ':', byte('0'+rng.IntN(6)), byte('0'+rng.IntN(10)), ':', byte('0'+rng.IntN(6)), byte('0'+rng.IntN(10)), 'Z', ' ')
		buf = append(buf, levels[rng.IntN(len(levels))]...)
		buf = append(buf, " [worker-"...)
		buf = strconv.AppendInt(buf, int64(rng.IntN(16)), 10)
		buf = append(buf, "] request id="...)
		buf = strconv.AppendUint(buf, rng.Uint64()>>16, 16)
		buf = append(buf, " method=GET path="...)
		buf = append(buf, paths[rng.IntN(len(paths))]...)
		buf = append(buf, '/')
		buf = strconv.AppendInt(buf, int64(rng.IntN(100000)), 10)
		buf = append(buf, " status="...)
		buf = strconv.AppendInt(buf, int64([...]int{200, 200, 200, 201, 304, 404, 500}[rng.IntN(7)]), 10)
		buf = append(buf, " bytes="...)
		buf = strconv.AppendInt(buf, int64(rng.IntN(1<<16)), 10)
		buf = append(buf, " latency_ms="...)
		buf = strconv.AppendInt(buf, int64(rng.IntN(2000)), 10)
		buf = append(buf, '\n')
	}
	return buf[:start+size]
}

// appendRandom appends size random bytes.
func appendRandom(buf []byte, rng *rand.Rand, size int) []byte {
	start := len(buf)
	for len(buf)-start < size {
		v := rng.Uint64()
		buf = append(buf, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
	}
	return buf[:start+size]
}
