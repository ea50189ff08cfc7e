package eval

import (
	"math"
	"testing"

	"blip/blip"
	"blip/gpu"
	"blip/gpu/gputest"
)

// TestEvalStableAcrossBackends: the evaluation gives the same results on
// lavapipe as on the CPU reference: identical captions (beam search over
// logits that agree to float rounding) and metrics, and retrieval with the
// same top-k candidates in the same order, scores within 1e-3, and the same
// recalls.
func TestEvalStableAcrossBackends(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cpu, vk := cpuBackend(t), gputest.Vulkan(t)
	es, err := LoadCaption(captionAnnotations(t), imagesDir, FormatAuto, 0)
	if err != nil {
		t.Fatal(err)
	}
	var caps [2]*CaptionResult
	for i, be := range []gpu.Backend{cpu, vk} {
		env := openTiny(t, be, "tiny-captioning", "caption", blip.KindCaptioning)
		if caps[i], err = Caption(env, es, CaptionOptions{Batch: 3, MaxLength: 12}); err != nil {
			t.Fatal(err)
		}
	}
	for j := range caps[0].Items {
		if a, b := caps[0].Items[j].Caption, caps[1].Items[j].Caption; a != b {
			t.Errorf("image %d: caption %q on the CPU, %q on Vulkan", j, a, b)
		}
	}
	if *caps[0].Metrics != *caps[1].Metrics {
		t.Errorf("caption metrics %+v on the CPU, %+v on Vulkan", *caps[0].Metrics, *caps[1].Metrics)
	}

	ds, err := LoadRetrieval(captionAnnotations(t), imagesDir, FormatAuto, 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ret [2]*RetrievalResult
	for i, be := range []gpu.Backend{cpu, vk} {
		env := openTiny(t, be, "tiny-retrieval", "retrieval", blip.KindRetrieval)
		if ret[i], err = Retrieval(env, ds, RetrievalOptions{K: 3}); err != nil {
			t.Fatal(err)
		}
	}
	same := func(what string, a, b []TopK) {
		for q := range a {
			for r := range a[q].Index {
				if a[q].Index[r] != b[q].Index[r] {
					t.Errorf("%s query %d: candidates %v on the CPU, %v on Vulkan", what, q, a[q].Index, b[q].Index)
					break
				}
				if d := math.Abs(float64(a[q].Score[r] - b[q].Score[r])); d > 1e-3 {
					t.Errorf("%s query %d rank %d: score %v on the CPU, %v on Vulkan", what, q, r, a[q].Score[r], b[q].Score[r])
				}
			}
		}
	}
	same("image->text", ret[0].I2T, ret[1].I2T)
	same("text->image", ret[0].T2I, ret[1].T2I)
	if ret[0].Recall != ret[1].Recall {
		t.Errorf("recall %+v on the CPU, %+v on Vulkan", ret[0].Recall, ret[1].Recall)
	}
}
