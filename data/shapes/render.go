package shapes

import (
	"fmt"
	"image"
	"math"
)

// Backgrounds are mid greys with a slight tint. White and black objects
// rule out light and dark backgrounds, and saturated colours stand out
// best against a neutral one; this range keeps every colour at least 70
// RGB units away from the background, its texture at full noise included
// (see the tests). Pixel noise is zero-mean and hits objects alike.
const (
	bgLo, bgHi = 118, 168 // grey level range
	bgTint     = 6        // per-channel tint, +-
	// textureAmp and pixelAmp are the amplitudes, at noise 1, of a smooth
	// luminance texture over the background and of per-pixel noise over
	// the whole image.
	textureAmp = 20.0
	pixelAmp   = 12.0
	// textureGrid is the number of texture cells per image side.
	textureGrid = 4
)

// background draws a scene's base colour.
func background(r *rng) [3]uint8 {
	g := bgLo + r.intn(bgHi-bgLo+1)
	var c [3]uint8
	for i := range c {
		c[i] = uint8(g + r.intn(2*bgTint+1) - bgTint)
	}
	return c
}

// Render draws a scene: background (with texture and noise when the
// scene's Noise is above 0) and anti-aliased objects, each pixel's coverage
// measured with supersample x supersample samples. The result depends only
// on the scene and supersample.
func Render(s *Scene, supersample int) (*image.RGBA, error) {
	if s.Width < 1 || s.Height < 1 || s.Width > MaxImageSize || s.Height > MaxImageSize {
		return nil, fmt.Errorf("shapes: render image %d: size %dx%d out of range", s.ImageID, s.Width, s.Height)
	}
	if supersample < 1 || supersample > MaxSupersample {
		return nil, fmt.Errorf("shapes: render image %d: supersample %d out of range 1..%d", s.ImageID, supersample, MaxSupersample)
	}
	if math.IsNaN(s.Noise) || s.Noise < 0 || s.Noise > 1 {
		return nil, fmt.Errorf("shapes: render image %d: noise %v out of range 0..1", s.ImageID, s.Noise)
	}
	w, h := s.Width, s.Height
	buf := make([]float64, 3*w*h)
	r := &rng{s: s.TextureSeed}
	tex := texture(r, w, h, textureAmp*s.Noise)
	for i := 0; i < w*h; i++ {
		for c := 0; c < 3; c++ {
			buf[3*i+c] = float64(s.Background[c]) + tex[i]
		}
	}
	for k := range s.Objects {
		if err := drawObject(buf, w, h, &s.Objects[k], supersample); err != nil {
			return nil, fmt.Errorf("shapes: render image %d: %v", s.ImageID, err)
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	amp := pixelAmp * s.Noise
	for i := 0; i < w*h; i++ {
		for c := 0; c < 3; c++ {
			v := buf[3*i+c]
			if amp > 0 {
				v += r.uniform(-amp, amp)
			}
			img.Pix[4*i+c] = uint8(math.Round(math.Min(255, math.Max(0, v))))
		}
		img.Pix[4*i+3] = 255
	}
	return img, nil
}

// texture is smooth value noise: random values on a textureGrid lattice,
// blended with smoothstep weights, scaled to +-amp. It is drawn even at
// amp 0 so that the pixel noise sequence does not depend on the level.
func texture(r *rng, w, h int, amp float64) []float64 {
	const n = textureGrid + 1
	var lat [n][n]float64
	for i := range lat {
		for j := range lat[i] {
			lat[i][j] = r.uniform(-1, 1)
		}
	}
	out := make([]float64, w*h)
	if amp == 0 {
		return out
	}
	for y := 0; y < h; y++ {
		fy := (float64(y) + 0.5) / float64(h) * textureGrid
		iy := min(int(fy), textureGrid-1)
		ty := smooth(fy - float64(iy))
		for x := 0; x < w; x++ {
			fx := (float64(x) + 0.5) / float64(w) * textureGrid
			ix := min(int(fx), textureGrid-1)
			tx := smooth(fx - float64(ix))
			top := lat[iy][ix]*(1-tx) + lat[iy][ix+1]*tx
			bot := lat[iy+1][ix]*(1-tx) + lat[iy+1][ix+1]*tx
			out[y*w+x] = amp * (top*(1-ty) + bot*ty)
		}
	}
	return out
}

func smooth(t float64) float64 { return t * t * (3 - 2*t) }

// drawObject blends one object over buf by its per-pixel coverage.
func drawObject(buf []float64, w, h int, o *SceneObject, ss int) error {
	if !o.Shape.Valid() || !o.Color.Valid() {
		return fmt.Errorf("object %q has an unknown shape or colour", o.Name())
	}
	b := o.Box
	half := (b[2] - b[0]) / 2
	if !(half > 0) || !b.Inside(w, h) {
		return fmt.Errorf("object %q: box %v is empty or outside the %dx%d image", o.Name(), b, w, h)
	}
	col := o.Color.RGB()
	cx, cy := (b[0]+b[2])/2, (b[1]+b[3])/2
	x0, y0 := int(math.Floor(b[0])), int(math.Floor(b[1]))
	x1, y1 := min(w, int(math.Ceil(b[2]))), min(h, int(math.Ceil(b[3])))
	step := 1 / float64(ss)
	total := float64(ss * ss)
	for py := y0; py < y1; py++ {
		for px := x0; px < x1; px++ {
			hits := 0
			for j := 0; j < ss; j++ {
				v := (float64(py) + (float64(j)+0.5)*step - cy) / half
				for i := 0; i < ss; i++ {
					u := (float64(px) + (float64(i)+0.5)*step - cx) / half
					if inside(o.Shape, u, v) {
						hits++
					}
				}
			}
			if hits == 0 {
				continue
			}
			cov := float64(hits) / total
			p := 3 * (py*w + px)
			for c := 0; c < 3; c++ {
				buf[p+c] = buf[p+c]*(1-cov) + float64(col[c])*cov
			}
		}
	}
	return nil
}
