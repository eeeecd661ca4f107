// Package secretbox seals secrets at rest with AES-256-GCM and derives
// tokens with HMAC-SHA256, both from one 32-byte key. It imports no domain
// package.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// Box seals and opens secrets. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
	mac  []byte
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, got %d", len(key))
	}
	// Separate subkeys for encryption and for token derivation.
	encKey := derive(key, "latchkey seal v1")
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead, mac: derive(key, "latchkey token v1")}, nil
}

// NewFromHex returns a Box for a key given as 64 hex characters.
func NewFromHex(h string) (*Box, error) {
	k, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("secret key is not hex: %w", err)
	}
	return New(k)
}

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Seal encrypts plain; the result carries its random nonce. ad binds the
// ciphertext to a context (e.g. a row id) so it cannot be moved elsewhere.
func (b *Box) Seal(plain, ad []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return b.aead.Seal(nonce, nonce, plain, ad)
}

// ErrOpen is returned when a sealed value does not decrypt with this key.
var ErrOpen = errors.New("sealed value does not open with this key")

// Open decrypts a value made by Seal with the same ad.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// Token derives a 256-bit URL-safe token from salt: the same salt always
// gives the same token, and without the key the token cannot be computed
// from the salt.
func (b *Box) Token(salt string) string {
	m := hmac.New(sha256.New, b.mac)
	m.Write([]byte(salt))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Hash returns the hex SHA-256 of a token, the form in which tokens are
// stored and looked up.
func Hash(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// RandomHex returns n random bytes as hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
