// Package qrtest reads QR codes back for tests, with gozxing: a decoder
// independent of the encoder that drew them.
package qrtest

import (
	"bytes"
	"image/png"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// Decode returns the text of the QR code in a PNG image, failing t when the
// image or the code does not read.
func Decode(t testing.TB, data []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode png: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("bitmap: %v", err)
	}
	// The codes under test are drawn, not photographed: read them as pure
	// barcodes (module size taken from the image itself). The general
	// detector misjudges the size of some perfectly square codes
	// ("NotFoundException: dimension = 27"); it is the fallback.
	pure := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_PURE_BARCODE: true}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, pure)
	if err != nil {
		var err2 error
		if res, err2 = qrcode.NewQRCodeReader().Decode(bmp, nil); err2 != nil {
			t.Fatalf("read QR code: %v (as a drawn code: %v)", err2, err)
		}
	}
	return res.GetText()
}
