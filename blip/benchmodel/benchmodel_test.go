package benchmodel

import (
	"os"
	"strings"
	"testing"
)

func tinyModels(t *testing.T) map[string]Model {
	t.Helper()
	tiny := `{"architectures": ["BlipForConditionalGeneration"], "image_text_hidden_size": 32,
		"text_config": {"bos_token_id": 135, "sep_token_id": 3, "pad_token_id": 0, "hidden_size": 64, "encoder_hidden_size": 64,
			"intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2, "max_position_embeddings": 64, "vocab_size": 137},
		"vision_config": {"hidden_size": 64, "image_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
			"num_hidden_layers": 2, "patch_size": 16}}`
	pre := `{"architectures": ["BlipForImageTextRetrieval"], "image_text_hidden_size": 32,
		"text_config": {"bos_token_id": 135, "sep_token_id": 3, "pad_token_id": 0, "hidden_size": 64, "encoder_hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
			"num_hidden_layers": 2, "max_position_embeddings": 64, "vocab_size": 137, "is_decoder": true},
		"vision_config": {"hidden_size": 64, "image_size": 32, "intermediate_size": 128, "num_attention_heads": 4,
			"num_hidden_layers": 2, "patch_size": 16}}`
	ms, err := Models([]byte(tiny), []byte(pre))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestBenchModelDerivedConfigs(t *testing.T) {
	ms := tinyModels(t)
	if got := ms["train"].Config.VisionConfig.ImageSize; got != 32 {
		t.Errorf("train image size %d, want the pretraining config's 32", got)
	}
	if got := ms["caption"].Config.VisionConfig.ImageSize; got != 64 {
		t.Errorf("caption image size %d, want 64", got)
	}
	if k := ms["itm"].Config.Kind.String(); k != "BlipForImageTextRetrieval" {
		t.Errorf("itm model is a %s", k)
	}
}

func TestBenchModelSelect(t *testing.T) {
	ws, err := Select(Anchor(), "beam3,itm", "itm=16")
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].Name != "beam3" || ws[0].Batch != 1 || ws[1].Batch != 16 {
		t.Errorf("got %+v", ws)
	}
	ws, err = Select(Anchor(), "", "4")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if want := map[bool]int{true: 1, false: 4}[w.Name == "caption1" || w.Name == "beam3"]; w.Batch != want {
			t.Errorf("%s: batch %d, want %d", w.Name, w.Batch, want)
		}
	}
	for _, bad := range [][2]string{{"nope", ""}, {"", "caption1=4"}, {"", "pretrain=1"}, {"", "vit=x"}} {
		if _, err := Select(Anchor(), bad[0], bad[1]); err == nil {
			t.Errorf("Select(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// The plain-PyTorch reference (no transformers) runs beam search with its
// KV cache at tiny size and reports the forced length, and re-ranks by
// ITM from cached image states.
func TestBenchModelTorchPlain(t *testing.T) {
	py := "/usr/bin/python3"
	ms := tinyModels(t)
	ws, err := Select(Anchor(), "beam3,itm-rerank", "itm-rerank=8")
	if err != nil {
		t.Fatal(err)
	}
	r, err := RunTorch(TorchOptions{Python: py, Device: "cpu", Impl: "plain", Reps: 1}, ms, ws)
	if err != nil {
		if _, statErr := os.Stat(py); statErr != nil || strings.Contains(err.Error(), "No module named 'torch'") {
			t.Skipf("no %s with torch, the reference is not tested here: %v", py, err)
		}
		t.Fatal(err)
	}
	if r.Impl != "plain" || r.Torch == "" || r.Threads < 1 {
		t.Errorf("run %+v", r)
	}
	for _, w := range ws {
		tw := r.Workloads[w.Name]
		if tw == nil || tw.Variants["fp32"] == nil {
			t.Fatalf("%s: no fp32 figure in %+v", w.Name, r.Workloads)
		}
		f := tw.Variants["fp32"]
		if f.Error != "" || !(f.Seconds > 0) || !(f.PerSecond > 0) {
			t.Errorf("%s: %+v", w.Name, f)
		}
		if w.Kind == "generate" && f.NewTokens != w.Tokens {
			t.Errorf("%s: %d new tokens, want %d", w.Name, f.NewTokens, w.Tokens)
		}
	}
}

// A missing interpreter is one line.
func TestBenchModelTorchMissing(t *testing.T) {
	_, err := RunTorch(TorchOptions{Python: "/nonexistent/python3", Device: "cpu", Impl: "auto", Reps: 1}, tinyModels(t), Anchor()[:1])
	if err == nil {
		t.Fatal("no error")
	}
	t.Log(err)
}
