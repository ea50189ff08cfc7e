package preprocess

import (
	"bytes"
	"fmt"
	"image"
	"image/gif"
)

// decodeGIF decodes the first frame of a GIF onto a canvas of the logical
// screen size, as Pillow does for frame 0. Go's decoder blanks the palette
// entry of the transparent index; Pillow keeps its colour (convert("RGB")
// ignores transparency), so the entry is restored from the file's colour
// table. Canvas pixels outside the first frame take the colour of the
// frame's transparent index when it has one, else of index 0 (Pillow fills
// frame 0's canvas that way, not with the background colour).
func decodeGIF(data []byte) (*RGB, error) {
	// gif.Decode stops after the first frame (DecodeAll would read them all).
	img, err := gif.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("GIF: %w", truncated(err))
	}
	frame, ok := img.(*image.Paletted)
	if !ok {
		return nil, fmt.Errorf("GIF: unexpected frame type %T", img)
	}
	cfg, err := gif.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("GIF: %w", truncated(err))
	}
	pal := paletteRGB(frame.Palette)
	t, ok := gifFirstTables(data)
	if ok {
		for i, c := range t.table {
			pal[i] = c
		}
	}
	w, h := cfg.Width, cfg.Height
	fb := frame.Bounds()
	if w == 0 || h == 0 {
		w, h = fb.Max.X, fb.Max.Y
	}
	out := NewRGB(w, h)
	bg := pal[0]
	if ok && t.transparent >= 0 {
		bg = pal[t.transparent]
	}
	for i := 0; i < w*h; i++ {
		out.Pix[3*i], out.Pix[3*i+1], out.Pix[3*i+2] = bg[0], bg[1], bg[2]
	}
	r := fb.Intersect(image.Rect(0, 0, w, h))
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := pal[frame.ColorIndexAt(x, y)]
			o := 3 * (y*w + x)
			out.Pix[o], out.Pix[o+1], out.Pix[o+2] = c[0], c[1], c[2]
		}
	}
	return out, nil
}

// gifTables is the colour table that applies to the first frame.
type gifTables struct {
	table       [][3]uint8
	transparent int // transparent index of the first frame, or -1
}

// gifFirstTables walks the GIF blocks up to the first image descriptor and
// returns its local colour table, or the global one.
func gifFirstTables(d []byte) (gifTables, bool) {
	if len(d) < 13 {
		return gifTables{}, false
	}
	var global [][3]uint8
	transparent := -1
	pos := 13
	readTable := func(flags byte) ([][3]uint8, bool) {
		n := 2 << (flags & 7)
		if pos+3*n > len(d) {
			return nil, false
		}
		t := make([][3]uint8, n)
		for i := range t {
			t[i] = [3]uint8{d[pos+3*i], d[pos+3*i+1], d[pos+3*i+2]}
		}
		pos += 3 * n
		return t, true
	}
	if d[10]&0x80 != 0 {
		var ok bool
		if global, ok = readTable(d[10]); !ok {
			return gifTables{}, false
		}
	}
	for pos < len(d) {
		switch d[pos] {
		case 0x21: // extension: label, then sub-blocks
			if pos+6 < len(d) && d[pos+1] == 0xf9 && d[pos+2] == 4 {
				// Graphic control extension: the last one before the image
				// applies to it.
				transparent = -1
				if d[pos+3]&1 != 0 {
					transparent = int(d[pos+6])
				}
			}
			pos += 2
			for pos < len(d) && d[pos] != 0 {
				pos += int(d[pos]) + 1
			}
			pos++
		case 0x2c: // image descriptor
			if pos+10 > len(d) {
				return gifTables{}, false
			}
			flags := d[pos+9]
			pos += 10
			if flags&0x80 != 0 {
				local, ok := readTable(flags)
				if !ok {
					return gifTables{}, false
				}
				return gifTables{table: local, transparent: transparent}, true
			}
			return gifTables{table: global, transparent: transparent}, global != nil
		default:
			return gifTables{}, false
		}
	}
	return gifTables{}, false
}
