package demo

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"

	"blip/blip/pretrain"
)

// A tiny 3x5 pixel font for the axis labels: digits, '.', and a few letters.
var glyphs = map[rune][5]string{
	'0': {"111", "101", "101", "101", "111"}, '1': {"010", "110", "010", "010", "111"},
	'2': {"111", "001", "111", "100", "111"}, '3': {"111", "001", "111", "001", "111"},
	'4': {"101", "101", "111", "001", "001"}, '5': {"111", "100", "111", "001", "111"},
	'6': {"111", "100", "111", "101", "111"}, '7': {"111", "001", "010", "010", "010"},
	'8': {"111", "101", "111", "101", "111"}, '9': {"111", "101", "111", "001", "111"},
	'.': {"000", "000", "000", "000", "010"}, ' ': {"000", "000", "000", "000", "000"},
	'a': {"010", "101", "111", "101", "101"}, 'i': {"111", "010", "010", "010", "111"},
	't': {"111", "010", "010", "010", "010"}, 'm': {"101", "111", "111", "101", "101"},
	'l': {"100", "100", "100", "100", "111"}, 'o': {"111", "101", "101", "101", "111"},
	's': {"111", "100", "111", "001", "111"}, 'e': {"111", "100", "111", "100", "111"},
	'p': {"111", "101", "111", "100", "100"}, 'k': {"101", "110", "100", "110", "101"},
}

type canvas struct{ *image.RGBA }

func (c canvas) set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.Rect) {
		c.SetRGBA(x, y, col)
	}
}

// text draws s with its top-left corner at (x, y), scale 2.
func (c canvas) text(x, y int, s string, col color.RGBA) {
	for _, r := range s {
		g, ok := glyphs[r]
		if ok {
			for gy, row := range g {
				for gx, b := range row {
					if b == '1' {
						for dy := 0; dy < 2; dy++ {
							for dx := 0; dx < 2; dx++ {
								c.set(x+2*gx+dx, y+2*gy+dy, col)
							}
						}
					}
				}
			}
		}
		x += 8
	}
}

// line draws a 2-pixel wide segment.
func (c canvas) line(x0, y0, x1, y1 float64, col color.RGBA) {
	n := int(math.Max(math.Abs(x1-x0), math.Abs(y1-y0))) + 1
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		x, y := int(math.Round(x0+t*(x1-x0))), int(math.Round(y0+t*(y1-y0)))
		c.set(x, y, col)
		c.set(x+1, y, col)
		c.set(x, y+1, col)
	}
}

// lossSeries are the plotted curves with their colours.
var lossSeries = []struct {
	name string
	col  color.RGBA
	f    func(pretrain.Metrics) float64
}{
	{"loss", color.RGBA{0, 0, 0, 255}, func(m pretrain.Metrics) float64 { return m.Loss }},
	{"ita", color.RGBA{31, 119, 180, 255}, func(m pretrain.Metrics) float64 { return m.ITA }},
	{"itm", color.RGBA{44, 160, 44, 255}, func(m pretrain.Metrics) float64 { return m.ITM }},
	{"lm", color.RGBA{214, 39, 40, 255}, func(m pretrain.Metrics) float64 { return m.LM }},
}

// writeLossPNG plots the losses against the step, each smoothed over a
// window of ~1% of the steps, with axes, ticks and a legend.
func writeLossPNG(path string, ms []pretrain.Metrics) error {
	const W, H, left, right, top, bottom = 900, 500, 60, 20, 20, 40
	c := canvas{image.NewRGBA(image.Rect(0, 0, W, H))}
	for i := range c.Pix {
		c.Pix[i] = 255
	}
	if len(ms) == 0 {
		return fmt.Errorf("demo: no metrics to plot")
	}
	ymax := 0.0
	for _, m := range ms {
		for _, s := range lossSeries {
			if v := s.f(m); !math.IsNaN(v) && !math.IsInf(v, 0) {
				ymax = math.Max(ymax, v)
			}
		}
	}
	ymax = math.Ceil(ymax)
	if ymax <= 0 {
		ymax = 1
	}
	n := len(ms)
	px := func(step float64) float64 { return left + (step-1)/math.Max(1, float64(n-1))*float64(W-left-right) }
	py := func(v float64) float64 { return float64(H-bottom) - v/ymax*float64(H-top-bottom) }
	grey, axis := color.RGBA{225, 225, 225, 255}, color.RGBA{60, 60, 60, 255}
	for k := 0; k <= 5; k++ { // horizontal grid and y labels
		v := ymax * float64(k) / 5
		y := py(v)
		c.line(left, y, float64(W-right), y, grey)
		c.text(4, int(y)-5, fmt.Sprintf("%.1f", v), axis)
	}
	for k := 0; k <= 5; k++ { // x ticks: steps
		s := 1 + float64(n-1)*float64(k)/5
		x := px(s)
		c.line(x, float64(H-bottom), x, float64(H-bottom+5), axis)
		c.text(int(x)-12, H-bottom+10, fmt.Sprintf("%d", int(math.Round(s))), axis)
	}
	c.text(W/2-20, H-14, "step", axis)
	c.line(left, float64(top), left, float64(H-bottom), axis)
	c.line(left, float64(H-bottom), float64(W-right), float64(H-bottom), axis)
	win := max(1, n/100)
	for _, s := range lossSeries {
		var prevX, prevY float64
		for i := range ms {
			var sum float64
			lo := max(0, i-win+1)
			for j := lo; j <= i; j++ {
				sum += s.f(ms[j])
			}
			x, y := px(float64(i+1)), py(sum/float64(i-lo+1))
			if i > 0 {
				c.line(prevX, prevY, x, y, s.col)
			}
			prevX, prevY = x, y
		}
	}
	for i, s := range lossSeries { // legend
		y := top + 8 + 16*i
		c.line(float64(W-right-110), float64(y+4), float64(W-right-80), float64(y+4), s.col)
		c.text(W-right-70, y, s.name, s.col)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
