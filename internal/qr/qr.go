// Package qr renders QR codes as PNG images: two colours, one bit per
// pixel, whole pixels per module, fast enough to draw one per access link.
package qr

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	goqr "github.com/piglig/go-qr"
)

// PNG returns content as a QR code (medium error correction, with the
// standard quiet zone) in a PNG image about size pixels wide: each module
// is drawn as a square of whole pixels, so the code stays sharp however it
// is scaled.
//
// The image is a 1-bit greyscale PNG written here row by row: every pixel
// row of a module row is the same, so each is packed once and handed to
// the compressor scale times. image/png asks the image for each pixel's
// colour index through an interface: about three quarters of the time an
// image took (BenchmarkPNG, 1.17 ms before, 0.45 ms after).
func PNG(content string, size int) ([]byte, error) {
	q, err := goqr.EncodeText(content, goqr.Medium)
	if err != nil {
		return nil, fmt.Errorf("render qr code: %w", err)
	}
	n := q.Size() + 2*quietZone
	scale := max(1, (size+n/2)/n)
	width := n * scale

	var buf bytes.Buffer
	buf.Grow(512 + width*width/64)
	buf.WriteString("\x89PNG\r\n\x1a\n")
	var hdr [13]byte
	binary.BigEndian.PutUint32(hdr[0:], uint32(width))
	binary.BigEndian.PutUint32(hdr[4:], uint32(width))
	hdr[8] = 1 // bit depth; then colour type 0 (greyscale), compression 0 (deflate), filter method 0, no interlace
	writeChunk(&buf, "IHDR", hdr[:])

	var idat bytes.Buffer
	z := compressors.Get().(*zlib.Writer)
	defer func() {
		z.Reset(io.Discard) // let go of this image's buffer
		compressors.Put(z)
	}()
	z.Reset(&idat)
	// A scanline is filter type 0 (none), then one bit per pixel, the
	// most significant first: 0 is black, 1 white.
	row := make([]byte, 1+(width+7)/8)
	for y := -quietZone; y < q.Size()+quietZone; y++ {
		for i := range row[1:] {
			row[1+i] = 0xff
		}
		if y >= 0 && y < q.Size() {
			for x := range q.Size() {
				if !q.Module(x, y) {
					continue
				}
				for px := (x + quietZone) * scale; px < (x+quietZone+1)*scale; px++ {
					row[1+px/8] &^= 0x80 >> (px % 8)
				}
			}
		}
		for range scale {
			if _, err := z.Write(row); err != nil {
				return nil, fmt.Errorf("encode qr code: %w", err)
			}
		}
	}
	if err := z.Close(); err != nil {
		return nil, fmt.Errorf("encode qr code: %w", err)
	}
	writeChunk(&buf, "IDAT", idat.Bytes())
	writeChunk(&buf, "IEND", nil)
	return buf.Bytes(), nil
}

// quietZone is the white border around the symbol, in modules: four, as
// the standard asks.
const quietZone = 4

// compressors holds zlib writers for reuse: a new one allocates its
// window and tables, several times the work of compressing one code.
var compressors = sync.Pool{New: func() any {
	z, _ := zlib.NewWriterLevel(io.Discard, zlib.BestSpeed) // the level is valid
	return z
}}

// writeChunk appends a PNG chunk: length, type, data, and the CRC-32 of
// type and data.
func writeChunk(w *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	w.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	w.WriteString(typ)
	w.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	w.Write(n[:])
}
