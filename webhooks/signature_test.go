package webhooks

import (
	"encoding/base64"
	"testing"
)

func TestSign(t *testing.T) {
	// HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), a
	// published test vector, in standard Base64.
	const want = "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
	if got := Sign([]byte("The quick brown fox jumps over the lazy dog"), "key"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	body := readFixture(t, "envoy-plugin-event-entry_sign_in.json")
	valid := Sign(body, "current")
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-2] ^= 1

	tests := []struct {
		name    string
		body    []byte
		header  string
		secrets []string
		want    bool
	}{
		{"valid", body, valid, []string{"current"}, true},
		{"valid with surrounding space", body, " " + valid + "\n", []string{"current"}, true},
		{"wrong secret", body, valid, []string{"other"}, false},
		{"rotated: signed with the old secret", body, Sign(body, "old"), []string{"current", "old"}, true},
		{"rotated: signed with the new secret", body, valid, []string{"current", "old"}, true},
		{"rotated: neither secret", body, Sign(body, "older"), []string{"current", "old"}, false},
		{"tampered body", tampered, valid, []string{"current"}, false},
		{"missing header", body, "", []string{"current"}, false},
		{"garbage base64", body, "not base64!!", []string{"current"}, false},
		{"base64 of the wrong length", body, base64.StdEncoding.EncodeToString([]byte("short")), []string{"current"}, false},
		{"hex instead of base64", body, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8", []string{"key"}, false},
		{"URL-safe base64 is not accepted", []byte("The quick brown fox jumps over the lazy dog"), "97yD9DBThCSxMpjmqm-xQ-9NWaFJRhdZl0edvC0aPNg=", []string{"key"}, false},
		{"standard base64 of the same MAC", []byte("The quick brown fox jumps over the lazy dog"), "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=", []string{"key"}, true},
		{"no secrets", body, valid, nil, false},
		{"empty secret never verifies", body, Sign(body, ""), []string{""}, false},
		{"empty secret among real ones", body, valid, []string{"", "current"}, true},
		{"empty body", nil, Sign(nil, "current"), []string{"current"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Verify(tt.body, tt.header, tt.secrets); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
