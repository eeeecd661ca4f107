// Package qr renders QR codes as PNG images: two colours, one bit per
// pixel, whole pixels per module, fast enough to draw one per access link.
package qr

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"sync"

	goqr "github.com/piglig/go-qr"
)

// PNG returns content as a QR code (medium error correction, with the
// standard quiet zone) in a PNG image about size pixels wide: each module
// is drawn as a square of whole pixels, so the code stays sharp however it
// is scaled.
func PNG(content string, size int) ([]byte, error) {
	q, err := goqr.EncodeText(content, goqr.Medium)
	if err != nil {
		return nil, fmt.Errorf("render qr code: %w", err)
	}
	n := q.Size() + 2*quietZone
	scale := max(1, (size+n/2)/n)
	img := image.NewPaletted(image.Rect(0, 0, n*scale, n*scale), palette)
	for y := range q.Size() {
		for x := range q.Size() {
			if !q.Module(x, y) {
				continue
			}
			for dy := range scale {
				off := ((y+quietZone)*scale+dy)*img.Stride + (x+quietZone)*scale
				for dx := range scale {
					img.Pix[off+dx] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := encoder.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode qr code: %w", err)
	}
	return buf.Bytes(), nil
}

// quietZone is the light border the standard asks for, in modules.
const quietZone = 4

var palette = color.Palette{color.White, color.Black}

// encoder reuses its compressor between images: allocating one costs more
// than compressing a QR code.
var encoder = &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &bufferPool{}}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() *png.EncoderBuffer {
	buf, _ := b.p.Get().(*png.EncoderBuffer)
	return buf
}

func (b *bufferPool) Put(buf *png.EncoderBuffer) { b.p.Put(buf) }
