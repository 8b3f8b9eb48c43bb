package scrypt

import (
	"bytes"
	"encoding/hex"
	"runtime"
	"testing"

	xscrypt "golang.org/x/crypto/scrypt"
)

// The test vectors of RFC 7914, section 12 (the two that run quickly).
func TestRFC7914(t *testing.T) {
	for _, tc := range []struct {
		password, salt string
		N, r, p        int
		want           string
	}{
		{"", "", 16, 1, 1, "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"},
		{"password", "NaCl", 1024, 8, 16, "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"},
	} {
		for _, workers := range []int{1, 3, 16} {
			got, err := Key([]byte(tc.password), []byte(tc.salt), tc.N, tc.r, tc.p, 64, workers)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tc.want {
				t.Errorf("scrypt(%q, %q, %d, %d, %d) with %d workers = %x, want %s", tc.password, tc.salt, tc.N, tc.r, tc.p, workers, got, tc.want)
			}
		}
	}
}

// Every shape of lanes (fewer workers than lanes, more, one) gives the key
// golang.org/x/crypto/scrypt gives.
func TestSameAsXCrypto(t *testing.T) {
	for _, tc := range []struct{ N, r, p, keyLen, workers int }{
		{2, 1, 1, 32, 1},
		{1 << 10, 8, 7, 64, 2},
		{1 << 10, 8, 7, 64, 7},
		{1 << 12, 1, 3, 16, 100},
		{1 << 8, 3, 5, 80, 4},
		{1 << 15, 8, 2, 64, 2}, // restic's N and r, the size a lane has in practice
	} {
		password, salt := []byte("restic-password"), []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
		want, err := xscrypt.Key(password, salt, tc.N, tc.r, tc.p, tc.keyLen)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Key(password, salt, tc.N, tc.r, tc.p, tc.keyLen, tc.workers)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("N=%d r=%d p=%d workers=%d: %x, x/crypto gives %x", tc.N, tc.r, tc.p, tc.workers, got, want)
		}
	}
}

func TestBadParameters(t *testing.T) {
	for _, tc := range []struct{ N, r, p int }{
		{0, 8, 1}, {1, 8, 1}, {3, 8, 1}, {1 << 10, 0, 1}, {1 << 10, 8, 0}, {1 << 10, 1 << 29, 4},
	} {
		if _, err := Key([]byte("x"), []byte("y"), tc.N, tc.r, tc.p, 32, 2); err == nil {
			t.Errorf("N=%d r=%d p=%d: no error", tc.N, tc.r, tc.p)
		}
	}
}

// BenchmarkResticKey derives a key with the parameters restic 0.18.1
// calibrated on the benchmark machine (N=2^15, r=8, p=7), one lane at a
// time and with GOMAXPROCS lanes.
func BenchmarkResticKey(b *testing.B) {
	for _, bc := range []struct {
		name    string
		workers int
	}{{"xcrypto", 0}, {"lanes=1", 1}, {"lanes=gomaxprocs", runtime.GOMAXPROCS(0)}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				var err error
				if bc.workers == 0 {
					_, err = xscrypt.Key([]byte("pw"), []byte("salt"), 1<<15, 8, 7, 64)
				} else {
					_, err = Key([]byte("pw"), []byte("salt"), 1<<15, 8, 7, 64, bc.workers)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
