package repository

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/compression"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/format"
	"github.com/kopia/kopia/repo/object"

	"github.com/stash-backup/stash/internal/repository/blobmem"
)

// kopiaRepo is a repository kopia writes with the given cipher, opened as a
// kopia client would open it.
func kopiaRepo(t *testing.T, cipher string) (repo.DirectRepository, blob.Storage) {
	t.Helper()
	ctx := context.Background()
	st, err := filesystem.New(ctx, &filesystem.Options{Path: filepath.Join(t.TempDir(), "repo")}, true)
	if err != nil {
		t.Fatal(err)
	}
	const password = "decode-test"
	if err := repo.Initialize(ctx, st, &repo.NewRepositoryOptions{
		BlockFormat:  format.ContentFormat{Hash: defaultHash, Encryption: cipher},
		ObjectFormat: format.ObjectFormat{Splitter: defaultSplitter},
	}, password); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "kopia.config")
	if err := repo.Connect(ctx, cfg, st, password, &repo.ConnectOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := repo.Open(ctx, cfg, password, &repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close(ctx) })
	return rep.(repo.DirectRepository), st
}

// TestContentDecoderMatchesKopia decodes contents kopia wrote with each of
// its ciphers and the compressors the decoder knows, from their stored
// bytes, and compares them with what kopia reads; it leaves any other
// compressor to kopia, and fails on stored bytes or an index entry that
// were changed.
func TestContentDecoderMatchesKopia(t *testing.T) {
	ctx := context.Background()
	// Different data for each compressor: equal data would be stored once.
	data := func(seed uint64) map[string][]byte {
		m := map[string][]byte{
			"text":   testStream(1<<20, seed),
			"random": randomBytes(300<<10, seed),
		}
		if seed == 1 {
			m["empty"] = nil
		}
		return m
	}
	for _, cipher := range []string{"AES256-GCM-HMAC-SHA256", "CHACHA20-POLY1305-HMAC-SHA256"} {
		t.Run(cipher, func(t *testing.T) {
			dr, st := kopiaRepo(t, cipher)
			d, err := newContentDecoder(dr.ContentReader().ContentFormat(), 2)
			if err != nil || d == nil {
				t.Fatalf("no decoder for %s: %v", cipher, err)
			}
			defer d.close()
			type written struct {
				name, comp string
				want       []byte
				cid        content.ID
			}
			var all []written
			err = repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{}, func(ctx context.Context, w repo.DirectRepositoryWriter) error {
				for i, comp := range []compression.Name{"", "zstd", "zstd-fastest", "zstd-better-compression", "s2-default"} {
					for name, b := range data(uint64(i + 1)) {
						ow := w.NewObjectWriter(ctx, object.WriterOptions{Compressor: comp, Splitter: chunkSplitter})
						if _, err := ow.Write(b); err != nil {
							return err
						}
						oid, err := ow.Result()
						ow.Close()
						if err != nil {
							return err
						}
						cid, compressed, ok := oid.ContentID()
						if !ok || compressed {
							t.Fatalf("%s/%s: object %v is not one content", comp, name, oid)
						}
						all = append(all, written{name, string(comp), b, cid})
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			cr := dr.ContentReader()
			compressedSeen := false
			for _, c := range all {
				info, err := cr.ContentInfo(ctx, c.cid)
				if err != nil {
					t.Fatal(err)
				}
				kopiaData, err := cr.GetContent(ctx, c.cid)
				if err != nil || !bytes.Equal(kopiaData, c.want) {
					t.Fatalf("%s/%s: kopia read %d bytes (%v), want %d", c.comp, c.name, len(kopiaData), err, len(c.want))
				}
				if c.comp == "s2-default" {
					if c.name == "text" && info.CompressionHeaderID == 0 {
						t.Fatal("s2 did not compress the text")
					}
					if info.CompressionHeaderID != 0 && d.supports(info) {
						t.Errorf("%s: the decoder claims s2 (header %x)", c.name, info.CompressionHeaderID)
					}
					continue
				}
				if !d.supports(info) {
					t.Fatalf("%s/%s: the decoder does not support header %x", c.comp, c.name, info.CompressionHeaderID)
				}
				compressedSeen = compressedSeen || info.CompressionHeaderID != 0
				var packed blobmem.Buffer
				if err := st.GetBlob(ctx, info.PackBlobID, int64(info.PackOffset), int64(info.PackedLength), &packed); err != nil {
					t.Fatal(err)
				}
				raw := packed.Bytes()
				stored := bytes.Clone(raw)
				var scratch []byte
				got, err := d.decode(info, raw, &scratch)
				if err != nil || !bytes.Equal(got, c.want) {
					t.Fatalf("%s/%s: decoded %d bytes (%v), want %d", c.comp, c.name, len(got), err, len(c.want))
				}
				if !bytes.Equal(raw, stored) {
					t.Fatalf("%s/%s: decode changed the stored bytes", c.comp, c.name)
				}
				// A flipped bit anywhere fails authentication.
				for _, at := range []int{0, len(raw) / 2, len(raw) - 1} {
					bad := bytes.Clone(raw)
					bad[at] ^= 1
					if _, err := d.decode(info, bad, &scratch); err == nil {
						t.Errorf("%s/%s: a bit flipped at %d of %d decoded", c.comp, c.name, at, len(raw))
					}
				}
				// Nor is a size beyond any content's sized from it.
				huge := info
				huge.OriginalLength = maxDecodedContent + 1
				if d.supports(huge) {
					t.Errorf("%s/%s: a content of %d bytes is decoded into buffers sized from the index", c.comp, c.name, huge.OriginalLength)
				}
				// The index is believed only as far as it agrees.
				wrongLen := info
				wrongLen.OriginalLength++
				if _, err := d.decode(wrongLen, raw, &scratch); !errors.Is(err, errContentLength) {
					t.Errorf("%s/%s: a longer length in the index: %v", c.comp, c.name, err)
				}
				if info.CompressionHeaderID != 0 {
					wrongComp := info
					wrongComp.CompressionHeaderID = compression.HeaderZstdBestCompression
					if info.CompressionHeaderID == wrongComp.CompressionHeaderID {
						wrongComp.CompressionHeaderID = compression.HeaderZstdDefault
					}
					if _, err := d.decode(wrongComp, raw, &scratch); err == nil {
						t.Errorf("%s/%s: another compressor in the index decoded", c.comp, c.name)
					}
					shorter := info
					shorter.OriginalLength--
					if _, err := d.decode(shorter, raw, &scratch); err == nil {
						t.Errorf("%s/%s: data longer than the index says decoded", c.comp, c.name)
					}
				}
				other := info
				other.ContentID = all[0].cid
				if other.ContentID != info.ContentID {
					if _, err := d.decode(other, raw, &scratch); err == nil {
						t.Errorf("%s/%s: decoded under another content's ID", c.comp, c.name)
					}
				}
			}
			if !compressedSeen {
				t.Fatal("no compressed content was written")
			}
		})
	}
}
