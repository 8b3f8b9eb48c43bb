package repository

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/compression"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/format"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/stash-backup/stash/internal/repository/blobmem"
)

// contentDecoder turns a content's stored bytes into its data as kopia's
// content manager does on a read (decryptContentAndVerify: the AEAD
// opens and authenticates the bytes under a key derived from the content
// ID, then the compressor's header is checked and the rest decompressed),
// into buffers the caller reuses. kopia moves each content through a
// buffer for the ciphertext, one for the plaintext and one for the data,
// then copies the data into a fresh, zeroed slice: copies that were a
// large share of a restore's CPU (docs/benchmarks-history.md).
//
// It knows kopia's two ciphers and its zstd compressors. A repository
// with error correction, and a content in any other form, are read by
// kopia (supports).
type contentDecoder struct {
	newAEAD func(key []byte) (cipher.AEAD, error)
	// hmacs derive each content's key, keyed with the repository's
	// encryption secret (kopia's deriveKey).
	hmacs sync.Pool
	zstd  *zstd.Decoder
	// plain holds decrypted, still compressed bytes between the cipher
	// and the decompressor.
	plain sync.Pool
	// decoded counts the contents decoded, for tests.
	decoded atomic.Int64
}

// contentKeyPurpose and contentKeySize are kopia's key derivation for
// both of its ciphers (purposeEncryptionKey, and their secret sizes).
const (
	contentKeyPurpose = "encryption"
	contentKeySize    = 32
)

// newContentDecoder returns a decoder for a repository of format f, or
// nil when kopia's own reading is needed for all of it.
func newContentDecoder(f format.Provider, workers int) (*contentDecoder, error) {
	d := &contentDecoder{}
	switch f.GetEncryptionAlgorithm() {
	case "AES256-GCM-HMAC-SHA256":
		d.newAEAD = func(key []byte) (cipher.AEAD, error) {
			c, err := aes.NewCipher(key)
			if err != nil {
				return nil, err
			}
			return cipher.NewGCM(c)
		}
	case "CHACHA20-POLY1305-HMAC-SHA256":
		d.newAEAD = chacha20poly1305.New
	default:
		return nil, nil
	}
	if f.GetECCAlgorithm() != "" && f.GetECCOverheadPercent() > 0 {
		return nil, nil
	}
	secret, err := hkdf.Key(sha256.New, f.GetMasterKey(), []byte(contentKeyPurpose), "", contentKeySize)
	if err != nil {
		return nil, fmt.Errorf("derive the content key: %w", err)
	}
	d.hmacs.New = func() any { return hmac.New(sha256.New, secret) }
	// The output is capped at the capacity decode gives it, the content's
	// original length: a content cannot expand past what the index says.
	d.zstd, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(max(workers, 1)), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	d.plain.New = func() any { return new([]byte) }
	return d, nil
}

// close frees the decompressor's goroutines and memory.
func (d *contentDecoder) close() {
	if d != nil {
		d.zstd.Close()
	}
}

// maxDecodedContent bounds the buffers decode sizes from the index: a
// content kopia's splitters cut is at most a few MiB, and a larger one is
// left to kopia rather than trusted with that much of a restore's memory.
const maxDecodedContent = 32 << 20

// supports tells whether decode knows the form of content info.
func (d *contentDecoder) supports(info content.Info) bool {
	if d == nil || info.EncryptionKeyID != 0 || info.Deleted ||
		info.PackedLength > maxDecodedContent || info.OriginalLength > maxDecodedContent {
		return false
	}
	switch info.CompressionHeaderID {
	case 0, compression.HeaderZstdDefault, compression.HeaderZstdFastest,
		compression.HeaderZstdBetterCompression, compression.HeaderZstdBestCompression:
		return true
	}
	return false
}

// errContentLength is a content whose data is not as long as the index
// says.
var errContentLength = errors.New("decoded length differs from the index")

// decode returns the data of content info from raw, its stored bytes
// (which it leaves as they are), decoded into *scratch, grown as needed.
// The data is valid until scratch is used again.
func (d *contentDecoder) decode(info content.Info, raw []byte, scratch *[]byte) ([]byte, error) {
	// kopia's content IV: the last 16 bytes of the content's hash, both
	// the key derivation's input and the AEAD's additional data.
	h := info.ContentID.Hash()
	if len(h) < aes.BlockSize {
		return nil, fmt.Errorf("content %s: hash too short", info.ContentID)
	}
	iv := h[len(h)-aes.BlockSize:]
	mac := d.hmacs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(iv)
	var keyBuf [sha256.Size]byte
	key := mac.Sum(keyBuf[:0])
	d.hmacs.Put(mac)
	a, err := d.newAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("content %s: %w", info.ContentID, err)
	}
	if len(raw) < a.NonceSize()+a.Overhead() {
		return nil, fmt.Errorf("content %s: %d stored bytes are too short", info.ContentID, len(raw))
	}
	nonce, sealed := raw[:a.NonceSize()], raw[a.NonceSize():]
	// Uncompressed, the plaintext is the data; compressed, it goes
	// through a buffer of the decoder's to the decompressor.
	dst := scratch
	if info.CompressionHeaderID != 0 {
		dst = d.plain.Get().(*[]byte)
		defer d.plain.Put(dst)
	}
	p, err := a.Open(grow(dst, len(sealed)-a.Overhead()), nonce, sealed, iv)
	if err != nil {
		return nil, fmt.Errorf("content %s: decrypt: %w", info.ContentID, err)
	}
	*dst = p
	out := p
	if info.CompressionHeaderID != 0 {
		const headerLen = 4
		if len(p) < headerLen || compression.HeaderID(binary.BigEndian.Uint32(p)) != info.CompressionHeaderID {
			return nil, fmt.Errorf("content %s: compression header does not match the index", info.ContentID)
		}
		out, err = d.zstd.DecodeAll(p[headerLen:], grow(scratch, int(info.OriginalLength)))
		if err != nil {
			return nil, fmt.Errorf("content %s: decompress: %w", info.ContentID, err)
		}
		*scratch = out
	}
	if len(out) != int(info.OriginalLength) {
		return nil, fmt.Errorf("content %s: %w: %d bytes, want %d", info.ContentID, errContentLength, len(out), info.OriginalLength)
	}
	d.decoded.Add(1)
	return out, nil
}

// grow returns (*b)[:0] with room for n bytes, replacing *b when it has
// less.
func grow(b *[]byte, n int) []byte {
	if cap(*b) < n {
		*b = make([]byte, 0, n)
	}
	return (*b)[:0]
}

// contentDecoder returns the repository's decoder, made on first use;
// nil when kopia reads every content.
func (r *Reader) contentDecoder() *contentDecoder {
	r.decoderOnce.Do(func() {
		dr, ok := r.rep.(repo.DirectRepository)
		if !ok {
			return
		}
		d, err := newContentDecoder(dr.ContentReader().ContentFormat(), r.opts.parallelism())
		if err != nil {
			return
		}
		r.decoder = d
	})
	return r.decoder
}

// readContent returns the data of content cid decoded into *data when the
// decoder knows its form, its stored bytes read from storage into packed
// first; otherwise kopia reads it into a slice of its own. Either way the
// data is valid until data is used again.
//
// The stored bytes are read, not mapped: decoding straight from mapped
// pack files faults in every page of them once more, and unmapping each
// chunk interrupts every CPU the process runs on to flush its TLB, which
// cost a cold restore more than the copy a read makes
// (docs/benchmarks-history.md).
func (r *Reader) readContent(ctx context.Context, cr content.Reader, cid content.ID, packed *blobmem.Buffer, data *[]byte) ([]byte, error) {
	if d := r.contentDecoder(); d != nil {
		if info, err := cr.ContentInfo(ctx, cid); err == nil && d.supports(info) {
			packed.Reset()
			// Room for the last, empty read of ReadFrom too, so that the
			// buffer is not grown on the way.
			packed.Grow(int(info.PackedLength) + bytes.MinRead)
			if err := r.st.GetBlob(ctx, info.PackBlobID, int64(info.PackOffset), int64(info.PackedLength), packed); err == nil {
				return r.decodeContent(ctx, cr, info, packed.Bytes(), data)
			}
			r.fallbacks.Add(1)
		}
	}
	return cr.GetContent(ctx, cid)
}

// decodeContent returns the data of content info from raw, its stored
// bytes, decoded into *scratch; or, when the decoder does not know the
// content's form or fails on it, as kopia reads it, which reports the
// error if there is one (a content of a pack not yet written, in a
// session that writes, is found only by kopia).
func (r *Reader) decodeContent(ctx context.Context, cr content.Reader, info content.Info, raw []byte, scratch *[]byte) ([]byte, error) {
	if d := r.contentDecoder(); d.supports(info) {
		if len(raw) == int(info.PackedLength) {
			if data, err := d.decode(info, raw, scratch); err == nil {
				return data, nil
			}
		}
		r.fallbacks.Add(1)
	}
	return cr.GetContent(ctx, info.ContentID)
}

// readBuffers are the buffers of one content read: its stored bytes and
// its data.
type readBuffers struct {
	packed blobmem.Buffer
	data   []byte
}

// contentReadBuffers serve reads of one-content objects, a restore's
// small files, one after the other.
var contentReadBuffers = sync.Pool{New: func() any { return new(readBuffers) }}
