package qr

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/qr/qrtest"
)

// decode returns the text of the QR code in data and the image's width.
func decode(t *testing.T, data []byte) (string, int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode png: %v", err)
	}
	return qrtest.Decode(t, data), img.Bounds().Dx()
}

func TestPNGDecodesBack(t *testing.T) {
	for _, tc := range []struct {
		content string
		size    int
	}{
		{"qrt_" + strings.Repeat("5f2b3c9d", 8), 256},
		{"https://latchkey.example/v/" + strings.Repeat("Ab3_", 11), 512},
		{"x", 64},
		{"tiny size still draws a module per pixel", 1},
	} {
		data, err := PNG(tc.content, tc.size)
		if err != nil {
			t.Fatalf("PNG(%q): %v", tc.content, err)
		}
		got, width := decode(t, data)
		if got != tc.content {
			t.Errorf("decoded %q, want %q", got, tc.content)
		}
		if tc.size >= 64 && (width < tc.size*2/3 || width > tc.size*3/2) {
			t.Errorf("%q at size %d: image is %d px wide", tc.content, tc.size, width)
		}
	}
}

func TestPNGRejectsTooLong(t *testing.T) {
	if _, err := PNG(strings.Repeat("a", 5000), 256); err == nil {
		t.Error("PNG of 5000 bytes: got nil error, want one (more than a QR code holds)")
	}
}

func BenchmarkPNG(b *testing.B) {
	tok := "qrt_" + strings.Repeat("5f2b3c9d", 8)
	for b.Loop() {
		if _, err := PNG(tok, 256); err != nil {
			b.Fatal(err)
		}
	}
}
