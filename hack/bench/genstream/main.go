// Command genstream writes a deterministic benchmark stream to stdout: 1 MiB
// blocks alternating SQL-like text and random bytes, like a database dump
// with binary columns. With -change P, P percent of the blocks (spread
// evenly) carry a small in-place change, to measure incremental backups.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
)

const block = 1 << 20

func main() {
	size := flag.Int64("size", 1<<30, "stream size in bytes")
	change := flag.Float64("change", 0, "percent of blocks to change")
	seed := flag.Uint64("seed", 42, "random seed")
	flag.Parse()

	w := bufio.NewWriterSize(os.Stdout, 4<<20)
	defer w.Flush()
	nblocks := (*size + block - 1) / block
	every := int64(0)
	if *change > 0 {
		every = int64(100 / *change)
	}
	buf := make([]byte, 0, block+256)
	for i := range nblocks {
		rng := rand.New(rand.NewPCG(*seed, uint64(i)))
		buf = buf[:0]
		if i%2 == 0 {
			for len(buf) < block {
				buf = append(buf, "INSERT INTO orders (id, customer, amount, note, created) VALUES ("...)
				buf = strconv.AppendInt(buf, i*100000+int64(len(buf)), 10)
				buf = append(buf, ", 'customer-"...)
				buf = strconv.AppendInt(buf, int64(rng.IntN(50000)), 10)
				buf = append(buf, "', "...)
				buf = strconv.AppendInt(buf, int64(rng.IntN(100000)), 10)
				buf = append(buf, '.', byte('0'+rng.IntN(10)), byte('0'+rng.IntN(10)))
				buf = append(buf, ", 'status "...)
				buf = append(buf, [...]string{"new", "paid", "shipped", "returned"}[rng.IntN(4)]...)
				buf = append(buf, "', '2026-0"...)
				buf = strconv.AppendInt(buf, int64(1+rng.IntN(9)), 10)
				buf = append(buf, "-1"...)
				buf = strconv.AppendInt(buf, int64(rng.IntN(9)), 10)
				buf = append(buf, " 12:00:00+00');\n"...)
			}
			buf = buf[:block]
		} else {
			buf = buf[:block]
			for j := 0; j < block; j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					buf[j+k] = byte(v >> (8 * k))
				}
			}
		}
		if every > 0 && i%every == every/2 {
			copy(buf[block/3:], fmt.Sprintf("-- changed block %d --", i))
		}
		n := int64(block)
		if rem := *size - i*block; rem < n {
			n = rem
		}
		if _, err := w.Write(buf[:n]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
