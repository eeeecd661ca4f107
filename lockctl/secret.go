package lockctl

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/latchkey/latchkey/internal/qr"
)

// newSecret returns 32 random bytes, base64url-encoded without padding
// (43 characters): used for link secrets, QR tokens and API keys.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashSecret returns the hex SHA-256 of a secret: the only form in which
// secrets are stored. Secrets are high-entropy, so a fast hash is enough.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// equalSecret compares two secrets in constant time, whatever their
// lengths: it compares their hashes.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// qrPNG renders token as a QR code PNG, 256 px square, medium error
// correction.
func qrPNG(token string) ([]byte, error) {
	return qr.PNG(token, 256)
}
