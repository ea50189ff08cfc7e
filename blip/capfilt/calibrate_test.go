package capfilt

import (
	"math"
	"testing"
)

// TestCalibrate: the chosen threshold maximises min(kept, removed) on
// hand-checkable scores, and the rates it reports are those at it.
func TestCalibrate(t *testing.T) {
	pos := []float32{0.9, 0.8, 0.35, 0.3, 0.6}
	neg := []float32{0.1, 0.2, 0.25, 0.4, 0.05}
	c, err := Calibrate(pos, neg)
	if err != nil {
		t.Fatal(err)
	}
	// 0.275 (between 0.25 and 0.3) keeps every matching caption and removes
	// 4 of 5 mismatched; 0.325 has the same minimum (0.8) but keeps only 4
	// of 5 matching ones.
	if math.Abs(c.Threshold-0.275) > 1e-6 || c.Kept != 1 || c.Removed != 0.8 {
		t.Errorf("calibration %+v, want threshold 0.275 keeping 1.0 and removing 0.8", c)
	}
	// Separable scores: everything right.
	c, _ = Calibrate([]float32{0.7, 0.8}, []float32{0.1, 0.2})
	if c.Kept != 1 || c.Removed != 1 || !(c.Threshold > 0.2 && c.Threshold <= 0.7) {
		t.Errorf("separable: %+v", c)
	}
	if _, err := Calibrate(nil, []float32{0.1}); err == nil {
		t.Error("no matching captions: no error")
	}
}
