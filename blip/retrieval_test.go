package blip

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"blip/gpu"
	"blip/graph"
)

// TestRetrievalGolden checks BlipForImageTextRetrieval: ITM logits of
// image i with text i, of every pair (image states gathered, not
// recomputed), and the ITC cosine similarities.
func TestRetrievalGolden(t *testing.T) {
	gd := openGolden(t)
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be := bc.open(t)
			m := loadTiny(t, "tiny-retrieval", be)
			got := retrievalOutputs(t, m, be, gd)
			for _, name := range retrievalGoldenNames {
				checkClose(t, name, got[name], gd.f32(name), bc.tol)
			}
		})
	}
}

// retrievalGoldenNames are the golden outputs retrievalOutputs computes.
var retrievalGoldenNames = []string{"itm.itm_logits", "itm.itm_logits_all_pairs", "itm.cosine_sim"}

// retrievalOutputs runs the golden retrieval inputs through m in one plan:
// ITM logits of the golden pairs and of all image x text pairs, and the
// ITC cosine similarities, by golden name.
func retrievalOutputs(t *testing.T, m *Model, be gpu.Backend, gd *golden) map[string][]float32 {
	t.Helper()
	out, _ := retrievalRun(t, m, be, gd, encoderConfig())
	return out
}

// retrievalRun is retrievalOutputs with the plan compiled under cfg (its
// outputs set here), and the plan's statistics.
func retrievalRun(t *testing.T, m *Model, be gpu.Backend, gd *golden, cfg graph.Config) (map[string][]float32, graph.Stats) {
	t.Helper()
	v := &m.Config.VisionConfig
	s := gd.shape("itm.input_ids")
	b, tt := s[0], s[1]
	patches, err := Patchify(gd.f32("pixel_values"), b, v)
	if err != nil {
		t.Fatal(err)
	}
	ids, mask := gd.i32("itm.input_ids"), f32s(gd.i32("itm.attention_mask"))
	var pairIDs []int32
	var pairMask []float32
	var imgOf []int
	for r := range b * b {
		i, j := r/b, r%b
		imgOf = append(imgOf, i)
		pairIDs = append(pairIDs, ids[j*tt:(j+1)*tt]...)
		pairMask = append(pairMask, mask[j*tt:(j+1)*tt]...)
	}

	g := graph.New()
	pin := g.Input("patches", gpu.F32, b, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize)
	iin := g.Input("input_ids", gpu.I32, b, tt)
	min := g.Input("attention_mask", gpu.F32, b, tt)
	pid := g.Input("pair_ids", gpu.I32, b*b, tt)
	pmask := g.Input("pair_mask", gpu.F32, b*b, tt)
	img, err := m.VisionForward(g, pin)
	if err != nil {
		t.Fatal(err)
	}
	itm, err := m.ITMLogits(g, img, iin, min)
	if err != nil {
		t.Fatal(err)
	}
	all, err := m.ITMLogits(g, GatherRows(g, img, imgOf), pid, pmask)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := m.ITCSimilarity(g, img, iin, min)
	if err != nil {
		t.Fatal(err)
	}
	outs := []*graph.Tensor{itm, all, sim}
	cfg.Outputs = outs
	plan, err := g.Compile(be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	for _, err := range []error{
		plan.WriteF32(pin, patches), plan.WriteI32(iin, ids), plan.WriteF32(min, mask),
		plan.WriteI32(pid, pairIDs), plan.WriteF32(pmask, pairMask), plan.Run(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	res := map[string][]float32{}
	for i, name := range retrievalGoldenNames {
		got := make([]float32, outs[i].Numel())
		if err := plan.ReadF32(outs[i], got); err != nil {
			t.Fatal(err)
		}
		res[name] = got
	}
	return res, plan.Stats()
}

// TestLoadUsesEveryWeight: after loading, no stored tensor is left unread
// (the .bin's tied copy of the decoder weight is accounted for).
func TestLoadUsesEveryWeight(t *testing.T) {
	be := backends[0].open(t)
	for _, name := range []string{"tiny-captioning", "tiny-captioning-bin", "tiny-retrieval"} {
		f, err := OpenFolder(filepath.Join(tinyDir, name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(f, be)
		if err != nil {
			t.Fatal(err)
		}
		if u := f.Weights.Unused(); len(u) > 0 {
			t.Errorf("%s: unused weights %v", name, u)
		}
		if m.Kind == KindCaptioning && m.Params.Get(DecoderWeightName) != m.Params.Get(DecoderEmbedName) {
			t.Errorf("%s: the decoder weight is not tied to the word embeddings", name)
		}
		m.Close()
		f.Close()
	}
}

// TestLoadErrors: a weight whose shape disagrees with the config is an error
// naming the key; a builder the model class lacks is an error, not a panic.
func TestLoadErrors(t *testing.T) {
	be := backends[0].open(t)
	f, err := OpenFolder(filepath.Join(tinyDir, "tiny-captioning"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := *f.Config
	cfg.TextConfig.IntermediateSize = 96
	bad := *f
	bad.Config = &cfg
	if _, err := Load(&bad, be); err == nil || !strings.Contains(err.Error(), `"text_decoder.bert.encoder.layer.0.intermediate.dense.weight" has shape [128 64], expected [96 64]`) {
		t.Errorf("wrong shape: error %v", err)
	}

	m, err := Load(f, be)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	g := graph.New()
	img := g.Input("image", gpu.F32, 1, 17, 64)
	ids := g.Input("ids", gpu.I32, 1, 4)
	if _, err := m.ITMLogits(g, img, ids, nil); !errors.Is(err, errNoModule) {
		t.Errorf("ITM on a captioning model: error %v", err)
	}
	if _, err := m.ITCSimilarity(g, img, ids, nil); !errors.Is(err, errNoModule) {
		t.Errorf("ITC on a captioning model: error %v", err)
	}
	// A bad gather index is a graph error, not a panic.
	GatherRows(g, img, []int{0, 3})
	if g.Err() == nil {
		t.Error("GatherRows out of range: no graph error")
	}
}
