package restic

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// seal encrypts plain as restic does (IV, AES-256-CTR, Poly1305-AES). Only
// tests write restic objects: to stage locks a real restic holds only for
// an instant.
func (m *masterKey) seal(plain []byte) []byte {
	out := make([]byte, ivSize, ivSize+len(plain)+macSize)
	if _, err := rand.Read(out); err != nil {
		panic(err)
	}
	ct := make([]byte, len(plain))
	cipher.NewCTR(m.aes, out[:ivSize]).XORKeyStream(ct, plain)
	tag := m.mac(out[:ivSize], ct)
	return append(append(out, ct...), tag[:]...)
}

// writeLock stages a restic lock, as a running prune (exclusive) or
// backup (shared) holds it, and returns its path.
func writeLock(t *testing.T, r *Repository, dir string, exclusive bool) string {
	t.Helper()
	plain, _ := json.Marshal(map[string]any{"time": time.Now(), "exclusive": exclusive, "hostname": "stash-prune-job", "username": "root", "pid": 4242})
	obj := r.key.seal(plain)
	sum := sha256.Sum256(obj)
	p := filepath.Join(dir, "locks", hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, obj, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSealOpen(t *testing.T) {
	key := make([]byte, 64)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := newMasterKey(key[:32], key[32:48], key[48:])
	if err != nil {
		t.Fatal(err)
	}
	obj := k.seal([]byte("hello"))
	got, err := k.open(obj)
	if err != nil || string(got) != "hello" {
		t.Fatalf("open(seal) = %q, %v", got, err)
	}
	obj[ivSize] ^= 1
	if _, err := k.open(obj); err != errMAC {
		t.Fatalf("open of a changed ciphertext: %v, want errMAC", err)
	}
}

// TestHostileKeyFiles: a key file is input from storage; parameters that
// would make scrypt allocate or compute without bound are refused before
// any work.
func TestHostileKeyFiles(t *testing.T) {
	for _, kf := range []string{
		`{"kdf":"scrypt","N":4194304,"r":32,"p":1,"salt":"AAAA","data":"AAAA"}`,
		`{"kdf":"scrypt","N":1048576,"r":9,"p":1,"salt":"AAAA","data":"AAAA"}`,
		`{"kdf":"scrypt","N":32768,"r":8,"p":1000,"salt":"AAAA","data":"AAAA"}`,
		`{"kdf":"scrypt","N":1000,"r":8,"p":1,"salt":"AAAA","data":"AAAA"}`,
		`{"kdf":"argon2","N":32768,"r":8,"p":1,"salt":"AAAA","data":"AAAA"}`,
	} {
		if _, err := openKey([]byte(kf), "pw"); err == nil || errors.Is(err, ErrWrongPassword) {
			t.Errorf("key file %s: %v, want a refusal", kf, err)
		}
	}
}
