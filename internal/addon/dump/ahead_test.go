package dump

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// eofSignal closes done when its reader returns io.EOF.
type eofSignal struct {
	r    io.Reader
	done chan struct{}
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		close(e.done)
	}
	return n, err
}

// TestAheadCompressesWhileBehind: while nothing reads, a compressible
// source is read ahead far beyond the raw blocks (its blocks are kept
// compressed), and every byte comes back; a random source, which does not
// compress, stops at the raw blocks and the queue.
func TestAheadCompressesWhileBehind(t *testing.T) {
	text := bytes.Repeat([]byte("INSERT INTO t VALUES (1, 'stash', '                    ');\n"), 20_000) // 1.2 MB
	random := make([]byte, len(text))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name     string
		data     []byte
		readsAll bool
	}{{"text", text, true}, {"random", random, false}} {
		t.Run(tc.name, func(t *testing.T) {
			src := &eofSignal{r: bytes.NewReader(tc.data), done: make(chan struct{})}
			// 4 raw blocks of 4 KiB, room for 1000 items: raw, the
			// filler holds at most 4 KiB * (4 + 1) of the 1.2 MB.
			a := newAheadReader(src, 4<<10, 4, 1000)
			defer a.Close()
			select {
			case <-src.done:
				if !tc.readsAll {
					t.Fatal("random data read to the end without a reader: kept compressed, or the raw cap did not hold")
				}
			case <-time.After(2 * time.Second):
				if tc.readsAll {
					t.Fatal("text not read ahead beyond the raw blocks: not compressed while the reader was behind")
				}
			}
			got, err := io.ReadAll(a)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(tc.data))
			}
			if c := a.compressed.Load(); c != 0 {
				t.Errorf("%d compressed bytes still counted after reading everything", c)
			}
		})
	}
}

// TestAheadMixed: compressed and raw blocks, read while the filler runs,
// in every read size, come back in order.
func TestAheadMixed(t *testing.T) {
	var data []byte
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		block := make([]byte, 1000+rng.IntN(9000))
		if i%3 == 0 {
			for j := range block {
				block[j] = byte(rng.Uint32())
			}
		} else {
			copy(block, bytes.Repeat([]byte("abc "), len(block)/4))
		}
		data = append(data, block...)
	}
	for _, size := range []int{1, 100, 4096, 1 << 20} {
		a := newAheadReader(bytes.NewReader(data), 8<<10, 3, 64)
		time.Sleep(20 * time.Millisecond) // let a backlog build, so blocks get compressed
		var got []byte
		buf := make([]byte, size)
		for {
			n, err := a.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		a.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("read size %d: %d bytes back, want %d, or different", size, len(got), len(data))
		}
	}
}
