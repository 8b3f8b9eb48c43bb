package elasticsearch

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkAppendDoc is a restore's own work per line of a data file:
// reading the line and adding it to a bulk body. Lines are shaped like
// the documents of hack/bench/es.
func BenchmarkAppendDoc(b *testing.B) {
	var lines [][]byte
	size := 0
	for i := range 1000 {
		l := fmt.Sprintf(`{"_index":"bench-0","_id":"%d","_score":1,"_source":{"at":"2023-11-14T22:13:20Z","balance":%g,"email":"c%d@example.com","name":"customer %d","note":"%s","tags":["a","b",%d]}}`+"\n",
			i, float64(i)/7, i, i, strings.Repeat(fmt.Sprintf("%x", i*2654435761), 12), i%50)
		lines = append(lines, []byte(l))
		size += len(l)
	}
	rs := &restorer{c: &client{}}
	p := &pending{target: "bench-0"}
	b.SetBytes(int64(size))
	for b.Loop() {
		bt := newBatch()
		for _, l := range lines {
			if err := rs.appendDoc(bt, p, l); err != nil {
				b.Fatal(err)
			}
		}
		bt.release()
	}
}
