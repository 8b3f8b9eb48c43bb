package restic

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/crypto/poly1305"

	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/scrypt"
)

// restic encrypts every object with AES-256 in counter mode and
// authenticates the ciphertext with Poly1305-AES: an object is the IV,
// the ciphertext and the 16-byte MAC (restic's design document,
// "Encryption").
const (
	ivSize  = aes.BlockSize
	macSize = poly1305.TagSize
	// overhead is what encryption adds to a plaintext.
	overhead = ivSize + macSize
)

// errMAC is returned when an object's MAC does not verify: the object was
// damaged, or the key is not the repository's.
var errMAC = errors.New("ciphertext verification failed (MAC mismatch)")

// masterKey is a repository's key pair: AES-256 for encryption, a
// Poly1305-AES key (k for AES, r for Poly1305) for authentication.
type masterKey struct {
	aes  cipher.Block
	macK cipher.Block
	macR [16]byte
}

func newMasterKey(encrypt, macK, macR []byte) (*masterKey, error) {
	if len(encrypt) != 32 || len(macK) != 16 || len(macR) != 16 {
		return nil, fmt.Errorf("key has wrong lengths (encrypt %d, mac k %d, mac r %d bytes)", len(encrypt), len(macK), len(macR))
	}
	a, err := aes.NewCipher(encrypt)
	if err != nil {
		return nil, err
	}
	k, err := aes.NewCipher(macK)
	if err != nil {
		return nil, err
	}
	m := &masterKey{aes: a, macK: k}
	copy(m.macR[:], macR)
	return m, nil
}

// mac computes Poly1305-AES of msg with nonce: the one-time key is r
// followed by AES_k(nonce). poly1305 clamps r as restic's maskKey does.
func (m *masterKey) mac(nonce, msg []byte) [macSize]byte {
	var key [32]byte
	copy(key[:16], m.macR[:])
	m.macK.Encrypt(key[16:], nonce)
	var out [macSize]byte
	poly1305.Sum(&out, msg, &key)
	return out
}

// open verifies and decrypts an object (IV, ciphertext, MAC) in place and
// returns the plaintext, a slice of obj.
func (m *masterKey) open(obj []byte) ([]byte, error) {
	if len(obj) < overhead {
		return nil, fmt.Errorf("encrypted object is %d bytes, shorter than its IV and MAC", len(obj))
	}
	iv, ct, tag := obj[:ivSize], obj[ivSize:len(obj)-macSize], obj[len(obj)-macSize:]
	want := m.mac(iv, ct)
	if subtle.ConstantTimeCompare(want[:], tag) != 1 {
		return nil, errMAC
	}
	// Decrypted in place: every caller reads obj for this alone.
	cipher.NewCTR(m.aes, iv).XORKeyStream(ct, ct)
	return ct, nil
}

// keyFile is a restic key: the master key, encrypted with a key derived
// from the password by scrypt.
type keyFile struct {
	KDF  string `json:"kdf"`
	N    int    `json:"N"`
	R    int    `json:"r"`
	P    int    `json:"p"`
	Salt []byte `json:"salt"`
	Data []byte `json:"data"`
}

// Bounds on a key file's scrypt parameters: a key file is input from
// storage and could otherwise make this process allocate or compute
// without limit (scrypt needs 128·N·r bytes per lane, and p times the
// work; lanes beyond the first run at once only within scrypt.LaneBudget).
// restic writes N=2^15 by default (up to 2^20 when asked), r=8, p≤8.
const (
	maxScryptN      = 1 << 22
	maxScryptR      = 32
	maxScryptP      = 64
	maxScryptMemory = 1 << 30
)

// errWrongPassword is returned when the password opens no key.
// It is repository.ErrWrongPassword too, so callers (and exit codes) treat
// both formats alike.
var errWrongPassword = fmt.Errorf("%w: no key of the restic repository opens with it", repository.ErrWrongPassword)

// openKey derives the user key from password and decrypts the master key.
// It returns errWrongPassword when the MAC does not verify.
func openKey(raw []byte, password string) (*masterKey, error) {
	var k keyFile
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("key file is not restic's JSON: %w", err)
	}
	if k.KDF != "scrypt" {
		return nil, fmt.Errorf("key file uses KDF %q: restic keys use scrypt", k.KDF)
	}
	if k.N < 2 || k.N > maxScryptN || k.N&(k.N-1) != 0 || k.R < 1 || k.R > maxScryptR || k.P < 1 || k.P > maxScryptP ||
		int64(128)*int64(k.N)*int64(k.R) > maxScryptMemory {
		return nil, fmt.Errorf("key file has scrypt parameters out of range (N=%d r=%d p=%d)", k.N, k.R, k.P)
	}
	// restic calibrates p when it writes a key; its lanes run at once on
	// the CPUs the process may use.
	derived, err := scrypt.Key([]byte(password), k.Salt, k.N, k.R, k.P, 64, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, fmt.Errorf("scrypt: %w", err)
	}
	user, err := newMasterKey(derived[:32], derived[32:48], derived[48:64])
	if err != nil {
		return nil, err
	}
	plain, err := user.open(k.Data)
	if errors.Is(err, errMAC) {
		return nil, errWrongPassword
	}
	if err != nil {
		return nil, err
	}
	var mk struct {
		MAC struct {
			K []byte `json:"k"`
			R []byte `json:"r"`
		} `json:"mac"`
		Encrypt []byte `json:"encrypt"`
	}
	if err := json.Unmarshal(plain, &mk); err != nil {
		return nil, fmt.Errorf("master key is not restic's JSON: %w", err)
	}
	return newMasterKey(mk.Encrypt, mk.MAC.K, mk.MAC.R)
}
