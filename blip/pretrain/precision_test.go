package pretrain

import (
	"errors"
	"math"
	"strings"
	"testing"

	"blip/gpu/cpu"
)

// TestMixedPrecision trains the same run with fp32, bf16 and fp16 weight
// copies (fp32 master weights): the first step's losses agree to the
// weights' rounding, the 16-bit runs differ from fp32 (their copies are
// read), and their losses fall as fp32's do.
func TestMixedPrecision(t *testing.T) {
	const steps = 30
	runs := map[string][]Metrics{}
	for _, prec := range []string{"fp32", "bf16", "fp16"} {
		cfg := testConfig(t, func(s string) string {
			s = strings.Replace(s, `"max_epoch": 2, "steps_per_epoch": 3`, `"max_epoch": 1, "steps_per_epoch": 60`, 1)
			s = strings.Replace(s, `"checkpoint_every": 2`, `"checkpoint_every": 0`, 1)
			return strings.Replace(s, `"log_every": 1`, `"log_every": 1, "precision": "`+prec+`"`, 1)
		})
		var ms []Metrics
		_, err := Run(cfg, cpu.New(), trainSet(t), Options{Out: t.TempDir(), StopAfter: steps, Progress: func(m Metrics, _ float64) { ms = append(ms, m) }})
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("%s: %v", prec, err)
		}
		runs[prec] = ms
	}
	mean := func(ms []Metrics) float64 {
		var s float64
		for _, m := range ms {
			s += m.Loss
		}
		return s / float64(len(ms))
	}
	ref := runs["fp32"]
	for _, prec := range []string{"bf16", "fp16"} {
		ms := runs[prec]
		d0 := math.Abs(ms[0].Loss-ref[0].Loss) / ref[0].Loss
		first, last := mean(ms[:5]), mean(ms[len(ms)-5:])
		t.Logf("%s: first step loss %.5f (fp32 %.5f, rel diff %.2g); mean loss first 5 %.4f, last 5 %.4f (fp32 %.4f -> %.4f)",
			prec, ms[0].Loss, ref[0].Loss, d0, first, last, mean(ref[:5]), mean(ref[len(ref)-5:]))
		if d0 == 0 {
			t.Errorf("%s: first step loss equals fp32's bit for bit: the 16-bit copy is not read", prec)
		}
		if tol := map[string]float64{"bf16": 2.0 / 256, "fp16": 2.0 / 2048}[prec]; d0 > tol { // twice the rounding unit
			t.Errorf("%s: first step loss %.5f is %.2g from fp32's %.5f (> %.g)", prec, ms[0].Loss, d0, ref[0].Loss, tol)
		}
		if !(last < 0.9*first) {
			t.Errorf("%s: loss did not fall: %.4f -> %.4f", prec, first, last)
		}
	}
}
