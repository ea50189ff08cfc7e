package shapes

import (
	"math"
	"testing"
)

func rgbDist(a, b [3]float64) float64 {
	return math.Sqrt((a[0]-b[0])*(a[0]-b[0]) + (a[1]-b[1])*(a[1]-b[1]) + (a[2]-b[2])*(a[2]-b[2]))
}

func toF(c [3]uint8) [3]float64 { return [3]float64{float64(c[0]), float64(c[1]), float64(c[2])} }

// Colours are well apart from each other and from every background the
// generator can draw, at full noise.
func TestColorSeparation(t *testing.T) {
	for i, a := range allColors {
		for _, b := range allColors[i+1:] {
			if d := rgbDist(toF(a.RGB()), toF(b.RGB())); d < 90 {
				t.Errorf("%s and %s only %.0f apart", a, b, d)
			}
		}
	}
	worst := math.Inf(1)
	spread := textureAmp // pixel noise is zero-mean and hits objects too
	for _, col := range allColors {
		for g := bgLo - bgTint - spread; g <= bgHi+bgTint+spread; g++ {
			for _, tint := range [][3]float64{{0, 0, 0}, {1, -1, -1}, {-1, 1, -1}, {-1, -1, 1}, {1, 1, -1}, {1, -1, 1}, {-1, 1, 1}} {
				bg := [3]float64{g + tint[0]*bgTint, g + tint[1]*bgTint, g + tint[2]*bgTint}
				worst = math.Min(worst, rgbDist(toF(col.RGB()), bg))
			}
		}
	}
	if worst < 70 {
		t.Errorf("a colour comes within %.0f of a background", worst)
	}
	t.Logf("closest colour to any background: %.0f", worst)
}

// Outlines stay inside their unit box, and every shape covers its centre
// and a fair part of the box.
func TestShapeOutlines(t *testing.T) {
	for _, s := range allShapes {
		if !inside(s, 0, 0) {
			t.Errorf("%s does not cover its centre", s)
		}
		in := 0
		const n = 200
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				u, v := -1.2+2.4*(float64(i)+0.5)/n, -1.2+2.4*(float64(j)+0.5)/n
				if inside(s, u, v) {
					in++
					if math.Abs(u) > 1 || math.Abs(v) > 1 {
						t.Fatalf("%s covers (%v, %v), outside its box", s, u, v)
					}
				}
			}
		}
		// Area as a fraction of the unit box (the grid spans 2.4 x 2.4).
		area := float64(in) / (n * n) * 2.4 * 2.4 / 4
		if area < 0.3 || area > 0.75 {
			t.Errorf("%s covers %.2f of its box", s, area)
		}
	}
}

// Without noise, pixels away from every object are the background exactly
// and each object's centre pixel is its colour.
func TestRenderPixels(t *testing.T) {
	c := testConfig()
	c.Noise = 0
	c.N = 40
	d, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range d.Scenes {
		img, err := Render(&s, c.Supersample)
		if err != nil {
			t.Fatal(err)
		}
		for y := 0; y < s.Height; y++ {
			for x := 0; x < s.Width; x++ {
				px := Box{float64(x), float64(y), float64(x + 1), float64(y + 1)}
				covered := false
				for _, o := range s.Objects {
					covered = covered || px.Overlaps(o.Box)
				}
				i := img.PixOffset(x, y)
				got := [3]uint8{img.Pix[i], img.Pix[i+1], img.Pix[i+2]}
				if !covered && got != s.Background {
					t.Fatalf("image %d: pixel (%d,%d) = %v outside objects, background %v", s.ImageID, x, y, got, s.Background)
				}
			}
		}
		for _, o := range s.Objects {
			i := img.PixOffset(int(o.Center[0]), int(o.Center[1]))
			got := [3]uint8{img.Pix[i], img.Pix[i+1], img.Pix[i+2]}
			if rgbDist(toF(got), toF(o.Color.RGB())) > 2 {
				t.Errorf("image %d: centre of %s is %v", s.ImageID, o.Name(), got)
			}
		}
	}
}

func TestRenderRejectsBadScenes(t *testing.T) {
	d := testDataset(t)
	s := d.Scenes[0]
	s.Objects = append([]SceneObject(nil), s.Objects...)
	bad := []func(*Scene){
		func(s *Scene) { s.Width = 0 },
		func(s *Scene) { s.Noise = 3 },
		func(s *Scene) { s.Objects[0].Color = "mauve" },
		func(s *Scene) { s.Objects[0].Box = Box{-5, -5, 10, 10} },
		func(s *Scene) { s.Objects[0].Box = Box{10, 10, 10, 10} },
	}
	for i, edit := range bad {
		c := s
		c.Objects = append([]SceneObject(nil), s.Objects...)
		edit(&c)
		if _, err := Render(&c, 4); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
	if _, err := Render(&s, 0); err == nil {
		t.Error("supersample 0: no error")
	}
}
