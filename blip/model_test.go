package blip

import (
	"encoding/json"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blip/data/preprocess"
	"blip/gpu"
	"blip/graph"
)

// goldenImages are the test images in batch order.
var goldenImages = []string{"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"}

// preprocessedPixels runs data/preprocess on the test images with the
// captioning folder's settings.
func preprocessedPixels(t *testing.T) []float32 {
	t.Helper()
	p, err := preprocess.FromConfigDir(filepath.Join(tinyDir, "tiny-captioning"))
	if err != nil {
		t.Fatal(err)
	}
	var imgs []image.Image
	for _, name := range goldenImages {
		img, err := preprocess.Load(filepath.Join(tinyDir, "images", name))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	px, err := p.Batch(imgs)
	if err != nil {
		t.Fatal(err)
	}
	return px
}

// TestPreprocessMatchesGolden checks that the Go image path gives HF's
// pixel_values, so that the golden tests below cover image file to logits.
func TestPreprocessMatchesGolden(t *testing.T) {
	gd := openGolden(t)
	checkClose(t, "pixel_values", preprocessedPixels(t), gd.f32("pixel_values"), 1e-6)
}

func TestPatchify(t *testing.T) {
	v := &VisionConfig{ImageSize: 4, PatchSize: 2, NumChannels: 2}
	px := make([]float32, 2*4*4)
	for i := range px {
		px[i] = float32(i)
	}
	got, err := Patchify(px, 1, v)
	if err != nil {
		t.Fatal(err)
	}
	// Patch (0, 1): channel 0 rows 0-1 columns 2-3, then channel 1.
	want := []float32{2, 3, 6, 7, 18, 19, 22, 23}
	for i, w := range want {
		if got[8+i] != w {
			t.Fatalf("patch 1 = %v, want %v", got[8:16], want)
		}
	}
	if _, err := Patchify(px[:5], 1, v); err == nil {
		t.Error("short pixels: no error")
	}
}

// captionRun is what one training run of the captioning model gives.
type captionRun struct {
	vision, pooled, logits []float32
	loss                   float32
	grads                  map[string][]float32
}

// runCaption loads an HF captioning folder on be and runs the forward
// (vision states, pooler output, logits) and the LM loss's backward on the
// golden inputs with the given pixel values.
func runCaption(t *testing.T, be gpu.Backend, dir string, pixels []float32, gd *golden) captionRun {
	t.Helper()
	m, err := LoadDir(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := m.Config
	ids, mask := gd.i32("cap.input_ids"), gd.i32("cap.attention_mask")
	s := gd.shape("cap.input_ids")
	b, tt := s[0], s[1]
	v := &cfg.VisionConfig
	patches, err := Patchify(pixels, b, v)
	if err != nil {
		t.Fatal(err)
	}
	labels, err := ShiftLabels(ids, b, tt, cfg.TextConfig.PadTokenID)
	if err != nil {
		t.Fatal(err)
	}

	g := graph.New()
	pin := g.Input("patches", gpu.F32, b, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize)
	iin := g.Input("input_ids", gpu.I32, b, tt)
	min := g.Input("attention_mask", gpu.F32, b, tt)
	lin := g.Input("labels", gpu.I32, b, tt-1)
	img, err := m.VisionForward(g, pin)
	if err != nil {
		t.Fatal(err)
	}
	pooled := m.Vision.Pooled(g, img)
	logits, err := m.CaptionLogits(g, img, iin, min)
	if err != nil {
		t.Fatal(err)
	}
	loss := m.CaptionLoss(g, logits, lin)
	plan, err := g.Compile(be, graph.Config{Outputs: []*graph.Tensor{img, pooled, logits}, Loss: loss, DropoutOff: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	for _, err := range []error{
		plan.WriteF32(pin, patches), plan.WriteI32(iin, ids), plan.WriteF32(min, f32s(mask)),
		plan.WriteI32(lin, labels), m.Params.ZeroGrad(), plan.Run(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	r := captionRun{
		vision: make([]float32, img.Numel()), pooled: make([]float32, pooled.Numel()),
		logits: make([]float32, logits.Numel()), grads: map[string][]float32{},
	}
	lv := make([]float32, 1)
	for _, x := range []struct {
		t   *graph.Tensor
		dst []float32
	}{{img, r.vision}, {pooled, r.pooled}, {logits, r.logits}, {loss, lv}} {
		if err := plan.ReadF32(x.t, x.dst); err != nil {
			t.Fatal(err)
		}
	}
	r.loss = lv[0]
	for _, p := range m.Params.List() {
		gr := make([]float32, p.Numel())
		if err := p.ReadGrad(gr); err != nil {
			t.Fatal(err)
		}
		r.grads[p.Name()] = gr
	}
	return r
}

func f32s(v []int32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// goldenLoss reads cap_loss from golden.json.
func goldenLoss(t *testing.T) float64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tinyDir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		CapLoss float64 `json:"cap_loss"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	return j.CapLoss
}

// checkCaption compares a run with the golden outputs and gradients.
func checkCaption(t *testing.T, r captionRun, gd *golden, tol float64) {
	t.Helper()
	checkClose(t, "cap.vision_last_hidden_state", r.vision, gd.f32("cap.vision_last_hidden_state"), tol)
	checkClose(t, "cap.vision_pooler_output", r.pooled, gd.f32("cap.vision_pooler_output"), tol)
	checkClose(t, "cap.logits", r.logits, gd.f32("cap.logits"), tol)
	if d := math.Abs(float64(r.loss) - goldenLoss(t)); !(d <= tol) {
		t.Errorf("cap_loss %v, want %v (error %.3g)", r.loss, goldenLoss(t), d)
	} else {
		t.Logf("cap_loss: error %.3g", d)
	}
	worst, worstName := 0.0, ""
	n := 0
	for name, got := range r.grads {
		key := "cap.grad." + name
		if !gd.has(key) {
			t.Errorf("golden has no gradient %q", key)
			continue
		}
		n++
		d, scale := maxAbsDiff(got, gd.f32(key))
		rel := d / max(1, scale)
		if !(rel <= 1e-4) {
			t.Errorf("%s: max abs error %.3g > 1e-4 * max(1, %.3g)", key, d, scale)
		}
		if rel > worst || math.IsNaN(rel) {
			worst, worstName = rel, name
		}
	}
	ng := 0
	for _, name := range gd.f.Names() {
		if strings.HasPrefix(name, "cap.grad.") {
			ng++
		}
	}
	if n != ng {
		t.Errorf("compared %d gradients, golden has %d", n, ng)
	}
	t.Logf("gradients of %d parameters: worst max abs error / max(1, max|g|) = %.3g (%s)", n, worst, worstName)
}

// TestCaptioningGolden checks BlipForConditionalGeneration's outputs and
// LM-loss gradients on every backend; on the CPU the pixels come from
// data/preprocess, so the whole path from image files is covered.
func TestCaptioningGolden(t *testing.T) {
	gd := openGolden(t)
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be := bc.open(t)
			px := gd.f32("pixel_values")
			if bc.name == "cpu" {
				px = preprocessedPixels(t)
			}
			checkCaption(t, runCaption(t, be, filepath.Join(tinyDir, "tiny-captioning"), px, gd), gd, bc.tol)
		})
	}
}

// TestCaptioningContainers checks that pytorch_model.bin and the converted
// original checkpoint give exactly the safetensors folder's results.
func TestCaptioningContainers(t *testing.T) {
	gd := openGolden(t)
	px := gd.f32("pixel_values")
	be := backends[0].open(t)
	ref := runCaption(t, be, filepath.Join(tinyDir, "tiny-captioning"), px, gd)

	conv := filepath.Join(t.TempDir(), "hf")
	if _, err := ConvertOriginal(origPth, conv, ConvertOptions{
		Config: readFile(t, origConfig), ConfigPath: origConfig, VocabPath: origVocab,
	}); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{
		"bin":       filepath.Join(tinyDir, "tiny-captioning-bin"),
		"converted": conv,
	} {
		t.Run(name, func(t *testing.T) {
			r := runCaption(t, be, dir, px, gd)
			same := func(what string, a, b []float32) {
				if d, _ := maxAbsDiff(a, b); d != 0 {
					t.Errorf("%s differs from the safetensors folder's by %.3g", what, d)
				}
			}
			same("vision states", r.vision, ref.vision)
			same("logits", r.logits, ref.logits)
			same("loss", []float32{r.loss}, []float32{ref.loss})
			for n, gr := range ref.grads {
				same("gradient of "+n, r.grads[n], gr)
			}
			checkCaption(t, r, gd, 1e-4)
		})
	}
}

// TestCaptionLossSmoothing checks the LM loss's shift, ignored pads and
// label smoothing against a float64 host computation on the golden logits
// (the tiny configs have no smoothing, so the golden loss cannot).
func TestCaptionLossSmoothing(t *testing.T) {
	gd := openGolden(t)
	be := backends[0].open(t)
	m := loadTiny(t, "tiny-captioning", be)
	const eps = 0.1
	m.Config.LabelSmoothing = eps
	ids, logits := gd.i32("cap.input_ids"), gd.f32("cap.logits")
	s := gd.shape("cap.logits")
	b, tt, vocab := s[0], s[1], s[2]
	labels, err := ShiftLabels(ids, b, tt, m.Config.TextConfig.PadTokenID)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	n := 0
	for r := range b {
		for i := range tt - 1 {
			y := labels[r*(tt-1)+i]
			if y == graph.IgnoreIndex {
				continue
			}
			row := logits[(r*tt+i)*vocab : (r*tt+i+1)*vocab]
			mx := math.Inf(-1)
			for _, x := range row {
				mx = max(mx, float64(x))
			}
			var z, mean float64
			for _, x := range row {
				z += math.Exp(float64(x) - mx)
				mean += float64(x)
			}
			lse := mx + math.Log(z)
			mean /= float64(vocab)
			sum += (1-eps)*(lse-float64(row[y])) + eps*(lse-mean)
			n++
		}
	}
	want := sum / float64(n)

	g := graph.New()
	lg := g.Input("logits", gpu.F32, b, tt, vocab)
	lb := g.Input("labels", gpu.I32, b, tt-1)
	loss := m.CaptionLoss(g, lg, lb)
	plan, err := g.Compile(be, graph.Config{Outputs: []*graph.Tensor{loss}})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	got := make([]float32, 1)
	for _, err := range []error{plan.WriteF32(lg, logits), plan.WriteI32(lb, labels), plan.Run(), plan.ReadF32(loss, got)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := math.Abs(float64(got[0]) - want); d > 1e-5*max(1, want) {
		t.Errorf("smoothed loss %v, want %v", got[0], want)
	}
}
