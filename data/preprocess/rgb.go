package preprocess

import (
	"image"
	"image/color"
)

// RGB is an 8-bit RGB image, 3 interleaved bytes per pixel, rows packed:
// the equivalent of a Pillow "RGB" image. It implements image.Image.
type RGB struct {
	W, H int
	Pix  []uint8 // len 3*W*H
}

// NewRGB allocates a black w x h image.
func NewRGB(w, h int) *RGB { return &RGB{W: w, H: h, Pix: make([]uint8, 3*w*h)} }

// ColorModel implements image.Image.
func (m *RGB) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image.
func (m *RGB) Bounds() image.Rectangle { return image.Rect(0, 0, m.W, m.H) }

// At implements image.Image.
func (m *RGB) At(x, y int) color.Color {
	if x < 0 || y < 0 || x >= m.W || y >= m.H {
		return color.RGBA{}
	}
	i := 3 * (y*m.W + x)
	return color.RGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], 255}
}

// RGBAt returns the three bytes of pixel (x, y).
func (m *RGB) RGBAt(x, y int) (r, g, b uint8) {
	i := 3 * (y*m.W + x)
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// ToRGB converts any image.Image to RGB the way Pillow's convert("RGB")
// treats the corresponding mode: grey is replicated, alpha is dropped
// without compositing (non-premultiplied colour is kept), 16-bit colour keeps
// the high byte. Go's premultiplied types (image.RGBA, RGBA64) are
// un-premultiplied first. A 16-bit grey image (image.Gray16) is treated as
// Pillow's "I;16" mode: values above 255 saturate to 255.
func ToRGB(img image.Image) *RGB {
	if m, ok := img.(*RGB); ok {
		return m
	}
	b := img.Bounds()
	out := NewRGB(b.Dx(), b.Dy())
	o := 0
	put := func(r, g, bl uint8) {
		out.Pix[o], out.Pix[o+1], out.Pix[o+2] = r, g, bl
		o += 3
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < b.Dx(); x++ {
				v := row[x]
				put(v, v, v)
			}
		}
	case *image.Gray16:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < b.Dx(); x++ {
				v := saturate16(uint16(row[2*x])<<8 | uint16(row[2*x+1]))
				put(v, v, v)
			}
		}
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < b.Dx(); x++ {
				put(row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.NRGBA64:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < b.Dx(); x++ {
				put(row[8*x], row[8*x+2], row[8*x+4]) // high bytes
			}
		}
	case *image.Paletted:
		pal := paletteRGB(m.Palette)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < b.Dx(); x++ {
				c := pal[row[x]]
				put(c[0], c[1], c[2])
			}
		}
	case *image.CMYK:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < b.Dx(); x++ {
				r, g, bl := CMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
				put(r, g, bl)
			}
		}
	default:
		// Generic path: non-premultiplied colour, high byte of 16 bits.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
				put(uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8))
			}
		}
	}
	return out
}

// saturate16 reduces a 16-bit grey sample as Pillow converts "I;16" to
// "L"/"RGB": values that do not fit in 8 bits become 255 (it does not scale).
func saturate16(v uint16) uint8 {
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// paletteRGB expands a palette to 256 straight (non-premultiplied) RGB
// entries; indices past its end are black, as in a Pillow palette.
func paletteRGB(p color.Palette) [256][3]uint8 {
	var out [256][3]uint8
	for i, c := range p {
		if i >= 256 {
			break
		}
		n := color.NRGBAModel.Convert(c).(color.NRGBA)
		if rc, ok := c.(color.RGBA); ok && rc.A == 255 {
			n = color.NRGBA{rc.R, rc.G, rc.B, 255}
		}
		out[i] = [3]uint8{n.R, n.G, n.B}
	}
	return out
}

// CMYKToRGB converts a Pillow "CMYK" pixel (ink amounts, 255 = full ink) to
// RGB with Pillow's formula: channel = K' - round(ink * K' / 255) where
// K' = 255 - K, i.e. the colour is scaled by the remaining light.
func CMYKToRGB(c, m, y, k uint8) (r, g, b uint8) {
	nk := 255 - int(k)
	f := func(v uint8) uint8 {
		t := int(v)*nk + 128
		return clip8(nk - ((t>>8)+t)>>8)
	}
	return f(c), f(m), f(y)
}

// clip8 clamps to [0, 255].
func clip8(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}
