package pretrain

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// PlotLosses draws the loss curves of ms (ITC, ITM, LM and their sum
// against the step) as a PNG: one panel, a legend with a swatch per curve,
// axis ticks labelled with a built-in 3x5 digit font (no font dependency),
// each curve smoothed by a running mean over ~1% of the steps so that the
// trend shows through per-batch noise.
func PlotLosses(ms []Metrics) ([]byte, error) {
	if len(ms) == 0 {
		return nil, fmt.Errorf("pretrain: no metrics to plot")
	}
	const w, h, left, right, top, bottom = 900, 500, 70, 20, 20, 50
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	series := []struct {
		name string
		c    color.RGBA
		f    func(Metrics) float64
	}{
		{"ita", color.RGBA{31, 119, 180, 255}, func(m Metrics) float64 { return m.ITA }},
		{"itm", color.RGBA{255, 127, 14, 255}, func(m Metrics) float64 { return m.ITM }},
		{"lm", color.RGBA{44, 160, 44, 255}, func(m Metrics) float64 { return m.LM }},
		{"loss", color.RGBA{40, 40, 40, 255}, func(m Metrics) float64 { return m.Loss }},
	}
	win := max(1, len(ms)/100)
	smooth := func(f func(Metrics) float64) []float64 {
		out := make([]float64, len(ms))
		var sum float64
		for i, m := range ms {
			sum += f(m)
			if i >= win {
				sum -= f(ms[i-win])
			}
			out[i] = sum / float64(min(i+1, win))
		}
		return out
	}
	ymax := 0.0
	ys := make([][]float64, len(series))
	for i, s := range series {
		ys[i] = smooth(s.f)
		for _, y := range ys[i] {
			if !math.IsNaN(y) && !math.IsInf(y, 0) {
				ymax = math.Max(ymax, y)
			}
		}
	}
	if ymax <= 0 {
		ymax = 1
	}
	ymax = niceCeil(ymax)
	x0, x1 := float64(ms[0].Step), float64(ms[len(ms)-1].Step)
	if x1 <= x0 {
		x1 = x0 + 1
	}
	px := func(x float64) int { return left + int((x-x0)/(x1-x0)*float64(w-left-right)) }
	py := func(y float64) int { return h - bottom - int(y/ymax*float64(h-top-bottom)) }
	grey := color.RGBA{200, 200, 200, 255}
	black := color.RGBA{0, 0, 0, 255}
	// Grid, ticks and labels.
	for i := 0; i <= 5; i++ {
		y := ymax * float64(i) / 5
		line(img, left, py(y), w-right, py(y), grey)
		drawText(img, left-8-textWidth(fmtTick(y)), py(y)-5, fmtTick(y), black)
		x := x0 + (x1-x0)*float64(i)/5
		line(img, px(x), top, px(x), h-bottom, grey)
		label := fmt.Sprintf("%d", int64(math.Round(x)))
		drawText(img, px(x)-textWidth(label)/2, h-bottom+10, label, black)
	}
	line(img, left, top, left, h-bottom, black)
	line(img, left, h-bottom, w-right, h-bottom, black)
	for i, s := range series {
		for j := 1; j < len(ms); j++ {
			a, b := ys[i][j-1], ys[i][j]
			if math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || math.IsInf(b, 0) {
				continue
			}
			line(img, px(float64(ms[j-1].Step)), py(a), px(float64(ms[j].Step)), py(b), s.c)
		}
		// Legend in the top right: a swatch and the name.
		lx, ly := w-right-120, top+10+i*18
		for dy := 0; dy < 10; dy++ {
			for dx := 0; dx < 24; dx++ {
				img.Set(lx+dx, ly+dy, s.c)
			}
		}
		drawText(img, lx+32, ly, s.name, black)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteLossPlot draws the metrics.jsonl in dir into dir/loss.png,
// atomically; a run with no metrics yet gets no plot.
func WriteLossPlot(dir string) error {
	ms, err := ReadMetrics(filepath.Join(dir, "metrics.jsonl"))
	if err != nil || len(ms) == 0 {
		return nil
	}
	img, err := PlotLosses(ms)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".loss.png.tmp")
	if err := os.WriteFile(tmp, img, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "loss.png"))
}

func niceCeil(y float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(y)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= y {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(y float64) string {
	s := fmt.Sprintf("%.2f", y)
	return s
}

// line draws a 1-pixel segment (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

// glyphs is a 3x5 pixel font for the characters the plot writes: each
// glyph is 5 rows of 3 bits, most significant bit leftmost.
var glyphs = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, '.': {0, 0, 0, 0, 2}, '-': {0, 0, 7, 0, 0},
	'i': {2, 0, 2, 2, 2}, 't': {2, 7, 2, 2, 3}, 'a': {0, 7, 1, 7, 7}, 'm': {0, 7, 7, 5, 5},
	'l': {6, 2, 2, 2, 7}, 'o': {0, 7, 5, 5, 7}, 's': {0, 7, 6, 3, 7},
}

const glyphScale = 2

func textWidth(s string) int { return len(s) * 4 * glyphScale }

// drawText writes s with its top-left corner at (x, y).
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		g, ok := glyphs[r]
		if ok {
			for row := range 5 {
				for col := range 3 {
					if g[row]&(4>>col) == 0 {
						continue
					}
					for sy := range glyphScale {
						for sx := range glyphScale {
							img.SetRGBA(x+col*glyphScale+sx, y+row*glyphScale+sy, c)
						}
					}
				}
			}
		}
		x += 4 * glyphScale
	}
}
