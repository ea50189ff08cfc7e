package preprocess

import (
	"fmt"

	"blip/data/preprocess/internal/jpeg"
)

// jpegSpace is the colour space libjpeg assumes for a JPEG's components.
type jpegSpace int

const (
	spaceGray jpegSpace = iota
	spaceYCbCr
	spaceRGB
	spaceCMYK
	spaceYCCK
)

// colorSpace guesses the colour space from the markers and component IDs
// with the rules of libjpeg's default_decompress_parms.
func colorSpace(r *jpeg.Raw) (jpegSpace, error) {
	switch len(r.Comps) {
	case 1:
		return spaceGray, nil
	case 3:
		switch {
		case r.JFIF:
			return spaceYCbCr, nil
		case r.Adobe:
			if r.AdobeTransform == 0 {
				return spaceRGB, nil
			}
			return spaceYCbCr, nil
		}
		c := r.Comps
		if c[0].ID == 'R' && c[1].ID == 'G' && c[2].ID == 'B' {
			return spaceRGB, nil
		}
		return spaceYCbCr, nil
	case 4:
		if r.Adobe && r.AdobeTransform != 0 {
			return spaceYCCK, nil
		}
		return spaceCMYK, nil
	}
	return 0, fmt.Errorf("JPEG with %d components", len(r.Comps))
}

// upsample expands component i of r to full resolution the way
// libjpeg-turbo does by default: "fancy" triangle filtering for 2x
// horizontal (h2v1), 2x vertical (h1v2) and 2x2 (h2v2) subsampling, and
// plain replication for other integer ratios, with the edge rules of its
// context-row buffering.
func upsample(r *jpeg.Raw, i int) ([]uint8, error) {
	hmax, vmax := 1, 1
	for _, c := range r.Comps {
		hmax = max(hmax, c.H)
		vmax = max(vmax, c.V)
	}
	c := r.Comps[i]
	plane, stride := r.Planes[i], r.Strides[i]
	W, H := r.Width, r.Height
	// Size of the component as libjpeg defines it (rounded up).
	cw := (W*c.H + hmax - 1) / hmax
	ch := (H*c.V + vmax - 1) / vmax
	if hmax%c.H != 0 || vmax%c.V != 0 {
		return nil, fmt.Errorf("JPEG: fractional sampling %dx%d of %dx%d is not supported", c.H, c.V, hmax, vmax)
	}
	hx, vx := hmax/c.H, vmax/c.V
	out := make([]uint8, W*H)
	at := func(x, y int) int { return int(plane[y*stride+x]) }
	switch {
	case hx == 1 && vx == 1:
		for y := 0; y < H; y++ {
			copy(out[y*W:(y+1)*W], plane[y*stride:y*stride+W])
		}
	case hx == 2 && vx == 1 && cw > 2:
		for y := 0; y < H; y++ {
			o := out[y*W : (y+1)*W]
			for x := 0; x < W; x++ {
				j := x / 2
				v := at(j, y)
				switch {
				case x%2 == 0 && j == 0, x%2 == 1 && j == cw-1:
					o[x] = uint8(v)
				case x%2 == 0:
					o[x] = uint8((3*v + at(j-1, y) + 1) >> 2)
				default:
					o[x] = uint8((3*v + at(j+1, y) + 2) >> 2)
				}
			}
		}
	case hx == 1 && vx == 2:
		for y := 0; y < H; y++ {
			i := y / 2
			o := out[y*W : (y+1)*W]
			if y%2 == 0 {
				n := max(i-1, 0)
				for x := 0; x < W; x++ {
					o[x] = uint8((3*at(x, i) + at(x, n) + 1) >> 2)
				}
			} else {
				n := min(i+1, ch-1)
				for x := 0; x < W; x++ {
					o[x] = uint8((3*at(x, i) + at(x, n) + 2) >> 2)
				}
			}
		}
	case hx == 2 && vx == 2 && cw > 2:
		sums := make([]int, cw)
		for y := 0; y < H; y++ {
			i := y / 2
			n := min(i+1, ch-1)
			if y%2 == 0 {
				n = max(i-1, 0)
			}
			for j := range sums {
				sums[j] = 3*at(j, i) + at(j, n)
			}
			o := out[y*W : (y+1)*W]
			for x := 0; x < W; x++ {
				j := x / 2
				s := sums[j]
				switch {
				case x%2 == 0 && j == 0:
					o[x] = uint8((4*s + 8) >> 4)
				case x%2 == 0:
					o[x] = uint8((3*s + sums[j-1] + 8) >> 4)
				case j == cw-1:
					o[x] = uint8((4*s + 7) >> 4)
				default:
					o[x] = uint8((3*s + sums[j+1] + 7) >> 4)
				}
			}
		}
	default:
		// Box replication (libjpeg's h2v1/h2v2/int upsamplers).
		for y := 0; y < H; y++ {
			row := plane[(y/vx)*stride:]
			o := out[y*W : (y+1)*W]
			for x := 0; x < W; x++ {
				o[x] = row[x/hx]
			}
		}
	}
	return out, nil
}

// yccTables are libjpeg's YCbCr -> RGB lookup tables (jdcolor.c), 16-bit
// fixed point.
var yccTables = func() (t struct{ crR, cbB, crG, cbG [256]int }) {
	const scaleBits = 16
	const half = 1 << (scaleBits - 1)
	fix := func(x float64) int { return int(x*(1<<scaleBits) + 0.5) }
	for i := 0; i < 256; i++ {
		x := i - 128
		t.crR[i] = (fix(1.40200)*x + half) >> scaleBits
		t.cbB[i] = (fix(1.77200)*x + half) >> scaleBits
		t.crG[i] = -fix(0.71414) * x
		t.cbG[i] = -fix(0.34414)*x + half
	}
	return t
}()

// yccToRGB converts one pixel exactly as libjpeg's ycc_rgb_convert.
func yccToRGB(y, cb, cr uint8) (r, g, b uint8) {
	Y := int(y)
	r = clip8(Y + yccTables.crR[cr])
	g = clip8(Y + (yccTables.cbG[cb]+yccTables.crG[cr])>>16)
	b = clip8(Y + yccTables.cbB[cb])
	return
}

// jpegToRGB finishes decoding as libjpeg + Pillow do: upsample, convert the
// colour space, and for 4-component images apply Pillow's "CMYK;I" unpacking
// (it always assumes Adobe's inverted CMYK) and its CMYK -> RGB formula.
func jpegToRGB(r *jpeg.Raw) (*RGB, error) {
	space, err := colorSpace(r)
	if err != nil {
		return nil, err
	}
	planes := make([][]uint8, len(r.Comps))
	for i := range r.Comps {
		if planes[i], err = upsample(r, i); err != nil {
			return nil, err
		}
	}
	out := NewRGB(r.Width, r.Height)
	n := r.Width * r.Height
	p := out.Pix
	switch space {
	case spaceGray:
		for i, v := range planes[0] {
			p[3*i], p[3*i+1], p[3*i+2] = v, v, v
		}
	case spaceRGB:
		for i := 0; i < n; i++ {
			p[3*i], p[3*i+1], p[3*i+2] = planes[0][i], planes[1][i], planes[2][i]
		}
	case spaceYCbCr:
		for i := 0; i < n; i++ {
			p[3*i], p[3*i+1], p[3*i+2] = yccToRGB(planes[0][i], planes[1][i], planes[2][i])
		}
	case spaceCMYK, spaceYCCK:
		for i := 0; i < n; i++ {
			var c, m, y uint8
			if space == spaceYCCK {
				// libjpeg's ycck_cmyk_convert gives 255 - R etc.; Pillow's
				// inversion turns that back into R, G, B as ink amounts.
				c, m, y = yccToRGB(planes[0][i], planes[1][i], planes[2][i])
			} else {
				c, m, y = 255-planes[0][i], 255-planes[1][i], 255-planes[2][i]
			}
			k := 255 - planes[3][i]
			p[3*i], p[3*i+1], p[3*i+2] = CMYKToRGB(c, m, y, k)
		}
	}
	return out, nil
}
