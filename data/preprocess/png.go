package preprocess

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
)

// decodePNG decodes a PNG and converts it as Pillow does. Pillow opens
// 16-bit greyscale as mode "I;16" and converting that to RGB saturates values
// above 255; every other 16-bit type is unpacked to 8 bits by keeping the
// high byte. Transparency (alpha or tRNS) is ignored.
func decodePNG(data []byte) (*RGB, error) {
	// IHDR: 8-byte signature, 4-byte length, "IHDR", width, height, depth, type.
	if len(data) < 26 || string(data[12:16]) != "IHDR" {
		return nil, fmt.Errorf("PNG: missing IHDR chunk")
	}
	depth, colorType := data[24], data[25]
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("PNG: %w", truncated(err))
	}
	if colorType == 0 && depth == 16 {
		return gray16ToRGB(img), nil
	}
	return ToRGB(img), nil
}

// gray16ToRGB converts a 16-bit greyscale PNG (decoded by Go as Gray16, or
// NRGBA64 when it has a tRNS chunk) with Pillow's "I;16" saturation.
func gray16ToRGB(img image.Image) *RGB {
	b := img.Bounds()
	out := NewRGB(b.Dx(), b.Dy())
	o := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			var v uint16
			switch m := img.(type) {
			case *image.Gray16:
				v = m.Gray16At(x, y).Y
			case *image.NRGBA64:
				v = m.NRGBA64At(x, y).R
			default:
				r, _, _, _ := img.At(x, y).RGBA()
				v = uint16(r)
			}
			s := saturate16(v)
			out.Pix[o], out.Pix[o+1], out.Pix[o+2] = s, s, s
			o += 3
		}
	}
	return out
}
