package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Sign returns the X-Envoy-Signature header value for body: the standard
// Base64 encoding of HMAC-SHA256(secret, body).
func Sign(body []byte, secret string) string {
	return base64.StdEncoding.EncodeToString(mac(body, secret))
}

// Verify reports whether header is a valid X-Envoy-Signature of the raw body
// under any of secrets; several secrets allow rotating the key without
// dropping deliveries. The comparison is constant-time and every secret is
// checked, so the time taken does not reveal which one matched. An empty
// header, a header that is not Base64, and empty secrets never verify.
// Verify is safe for concurrent use.
func Verify(body []byte, header string, secrets []string) bool {
	header = strings.TrimSpace(header)
	if header == "" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(header)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	ok := false
	for _, s := range secrets {
		if s == "" {
			// An empty key would let anyone sign: treat it as unset.
			continue
		}
		if hmac.Equal(got, mac(body, s)) {
			ok = true
		}
	}
	return ok
}

func mac(body []byte, secret string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(body)
	return h.Sum(nil)
}
