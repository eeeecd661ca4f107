package qrtest

import (
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/latchkey/latchkey/internal/qr"
)

// Every code the renderer draws reads back, whatever the token: the
// general detector alone failed on some (about one in a hundred), which
// made tests that draw random tokens flaky.
func TestRandomTokensReadBack(t *testing.T) {
	for i := 0; i < 500; i++ {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		tok := base64.RawURLEncoding.EncodeToString(b)
		png, err := qr.PNG(tok, 256)
		if err != nil {
			t.Fatal(err)
		}
		if got := Decode(t, png); got != tok {
			t.Fatalf("decoded %q, want %q", got, tok)
		}
	}
}
