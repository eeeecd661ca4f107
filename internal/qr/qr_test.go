package qr

import (
	"bytes"
	"image"
	"image/color"
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

// TestPNGHasTwoColoursAndAQuietZone: every pixel is black or white, the
// border the standard asks for (four modules) is white, and the symbol
// inside it has black modules.
func TestPNGHasTwoColoursAndAQuietZone(t *testing.T) {
	data, err := PNG("https://latchkey.example/v/"+strings.Repeat("Ab3_", 11), 256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	// The finder pattern's top-left corner is the first black pixel on
	// the diagonal; the quiet zone is what lies before it.
	border := -1
	for i := 0; i < b.Dx() && border < 0; i++ {
		if color.GrayModel.Convert(img.At(i, i)).(color.Gray).Y == 0 {
			border = i
		}
	}
	if border < 0 {
		t.Fatalf("no black pixel on the diagonal of a %d px image", b.Dx())
	}
	if border == 0 {
		t.Fatal("the top-left pixel is black: there is no quiet zone")
	}
	scale := border / quietZone
	if border%quietZone != 0 || b.Dx()%scale != 0 {
		t.Fatalf("quiet zone of %d px in a %d px image: not %d whole modules", border, b.Dx(), quietZone)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			g := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
			if g != 0 && g != 255 {
				t.Fatalf("pixel (%d,%d) is grey %d", x, y, g)
			}
			inZone := !image.Pt(x, y).In(image.Rect(border, border, b.Dx()-border, b.Dy()-border))
			if inZone && g != 255 {
				t.Fatalf("pixel (%d,%d) in the quiet zone is black", x, y)
			}
		}
	}
}
