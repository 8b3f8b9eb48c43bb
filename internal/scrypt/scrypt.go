// Package scrypt derives keys with scrypt (RFC 7914), running the
// parallelization parameter's independent lanes at once.
//
// golang.org/x/crypto/scrypt mixes the p lanes one after another. restic
// calibrates p when it writes a key (p is often 5 to 8), so opening a
// restic repository spent that many lanes' time on one CPU while the
// others waited. The result is the same key: the package's tests compare
// it with golang.org/x/crypto/scrypt.
package scrypt

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
	"sync"
)

// LaneBudget bounds the memory lanes mixed at once may hold together:
// more lanes run at once only while their tables fit in it (one lane
// always runs, whatever its table's size).
const LaneBudget = 256 << 20

// Key derives a keyLen-byte key from password and salt with cost N (a
// power of two above 1), block size r and parallelization p, mixing up to
// workers lanes at once.
func Key(password, salt []byte, N, r, p, keyLen, workers int) ([]byte, error) {
	if N <= 1 || N&(N-1) != 0 {
		return nil, errors.New("scrypt: N must be a power of two above 1")
	}
	if r < 1 || p < 1 || uint64(r)*uint64(p) >= 1<<30 || r > maxInt/128/p || r > maxInt/256 || N > maxInt/128/r {
		return nil, errors.New("scrypt: parameters are too large")
	}
	b, err := pbkdf2.Key(sha256.New, string(password), salt, 1, p*128*r)
	if err != nil {
		return nil, err
	}
	table := 128 * r * N
	lanes := max(1, min(p, workers, LaneBudget/table))
	next := make(chan int, p)
	for i := range p {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range lanes {
		wg.Go(func() {
			v := make([]uint32, 32*r*N)
			x := make([]uint32, 32*r)
			y := make([]uint32, 32*r)
			for i := range next {
				romix(b[i*128*r:(i+1)*128*r], r, N, v, x, y)
			}
		})
	}
	wg.Wait()
	return pbkdf2.Key(sha256.New, string(password), b, 1, keyLen)
}

const maxInt = int(^uint(0) >> 1)

// romix is scryptROMix (RFC 7914, section 5) on one lane's block b, in
// place; v holds the N blocks, x and y one block each.
func romix(b []byte, r, N int, v, x, y []uint32) {
	for i := range x {
		x[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	words := 32 * r
	for i := 0; i < N; i++ {
		copy(v[i*words:], x)
		blockMix(x, y, r)
		x, y = y, x
	}
	for range N {
		j := int(x[words-16]) & (N - 1)
		vj := v[j*words : (j+1)*words]
		for k := range x {
			x[k] ^= vj[k]
		}
		blockMix(x, y, r)
		x, y = y, x
	}
	for i, w := range x {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
}

// blockMix is scryptBlockMix (RFC 7914, section 4): the 2r 16-word
// blocks of in, chained through Salsa20/8, written to out with the even
// results first and the odd ones after.
func blockMix(in, out []uint32, r int) {
	var t [16]uint32
	copy(t[:], in[(2*r-1)*16:])
	for i := 0; i < 2*r; i += 2 {
		salsaXOR(&t, in[i*16:], out[i*8:])
		salsaXOR(&t, in[i*16+16:], out[i*8+r*16:])
	}
}

// salsaXOR sets t to Salsa20/8(t xor in) and copies it to out.
func salsaXOR(t *[16]uint32, in, out []uint32) {
	in = in[:16]
	w0, w1, w2, w3 := t[0]^in[0], t[1]^in[1], t[2]^in[2], t[3]^in[3]
	w4, w5, w6, w7 := t[4]^in[4], t[5]^in[5], t[6]^in[6], t[7]^in[7]
	w8, w9, w10, w11 := t[8]^in[8], t[9]^in[9], t[10]^in[10], t[11]^in[11]
	w12, w13, w14, w15 := t[12]^in[12], t[13]^in[13], t[14]^in[14], t[15]^in[15]
	x0, x1, x2, x3, x4, x5, x6, x7 := w0, w1, w2, w3, w4, w5, w6, w7
	x8, x9, x10, x11, x12, x13, x14, x15 := w8, w9, w10, w11, w12, w13, w14, w15
	for range 4 { // four double rounds: Salsa20/8
		// Columns.
		x4 ^= bits.RotateLeft32(x0+x12, 7)
		x8 ^= bits.RotateLeft32(x4+x0, 9)
		x12 ^= bits.RotateLeft32(x8+x4, 13)
		x0 ^= bits.RotateLeft32(x12+x8, 18)
		x9 ^= bits.RotateLeft32(x5+x1, 7)
		x13 ^= bits.RotateLeft32(x9+x5, 9)
		x1 ^= bits.RotateLeft32(x13+x9, 13)
		x5 ^= bits.RotateLeft32(x1+x13, 18)
		x14 ^= bits.RotateLeft32(x10+x6, 7)
		x2 ^= bits.RotateLeft32(x14+x10, 9)
		x6 ^= bits.RotateLeft32(x2+x14, 13)
		x10 ^= bits.RotateLeft32(x6+x2, 18)
		x3 ^= bits.RotateLeft32(x15+x11, 7)
		x7 ^= bits.RotateLeft32(x3+x15, 9)
		x11 ^= bits.RotateLeft32(x7+x3, 13)
		x15 ^= bits.RotateLeft32(x11+x7, 18)
		// Rows.
		x1 ^= bits.RotateLeft32(x0+x3, 7)
		x2 ^= bits.RotateLeft32(x1+x0, 9)
		x3 ^= bits.RotateLeft32(x2+x1, 13)
		x0 ^= bits.RotateLeft32(x3+x2, 18)
		x6 ^= bits.RotateLeft32(x5+x4, 7)
		x7 ^= bits.RotateLeft32(x6+x5, 9)
		x4 ^= bits.RotateLeft32(x7+x6, 13)
		x5 ^= bits.RotateLeft32(x4+x7, 18)
		x11 ^= bits.RotateLeft32(x10+x9, 7)
		x8 ^= bits.RotateLeft32(x11+x10, 9)
		x9 ^= bits.RotateLeft32(x8+x11, 13)
		x10 ^= bits.RotateLeft32(x9+x8, 18)
		x12 ^= bits.RotateLeft32(x15+x14, 7)
		x13 ^= bits.RotateLeft32(x12+x15, 9)
		x14 ^= bits.RotateLeft32(x13+x12, 13)
		x15 ^= bits.RotateLeft32(x14+x13, 18)
	}
	t[0], t[1], t[2], t[3] = x0+w0, x1+w1, x2+w2, x3+w3
	t[4], t[5], t[6], t[7] = x4+w4, x5+w5, x6+w6, x7+w7
	t[8], t[9], t[10], t[11] = x8+w8, x9+w9, x10+w10, x11+w11
	t[12], t[13], t[14], t[15] = x12+w12, x13+w13, x14+w14, x15+w15
	copy(out[:16], t[:])
}
