package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --precision reaches the model: itm with bf16 weights stays within the
// documented bf16 accuracy of transformers' fp32 logits (blip's
// precisionTol) but is not the fp32 result; unknown precisions are refused,
// and so is 16-bit precision for the demo's fixed fp32 recipe.
func TestPrecisionCLI(t *testing.T) {
	logits := func(prec string) []float64 {
		args := []string{"--backend", "cpu", "--precision", prec, "itm", "--model", filepath.Join(tinyTestDir, "tiny-retrieval"), "--image", astronaut, "--json"}
		for _, s := range goldenTexts {
			args = append(args, "--text", s)
		}
		out, err := run(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		var l []float64
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var rec struct {
				ITMLogits [2]float64 `json:"itm_logits"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatal(err)
			}
			l = append(l, rec.ITMLogits[0], rec.ITMLogits[1])
		}
		return l
	}
	want := goldenF32(t, "itm.itm_logits_all_pairs")
	full, bf := logits("fp32"), logits("bf16")
	same := true
	for i := range bf {
		if !near(bf[i], float64(want[i]), 4.0/256) {
			t.Errorf("bf16 logit %d: %v, transformers %v", i, bf[i], want[i])
		}
		same = same && bf[i] == full[i]
	}
	if same {
		t.Error("--precision bf16 gave the fp32 logits bit for bit")
	}
	if _, err := run(t, "--precision", "fp8", "itm", "--model", filepath.Join(tinyTestDir, "tiny-retrieval"), "--image", astronaut, "--text", "a"); err == nil || !strings.Contains(err.Error(), "fp8") {
		t.Errorf("--precision fp8: %v", err)
	}
	if _, err := run(t, "--precision", "fp4", "finetune", "--task", "caption", "--data", "none.json", "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "fp4") {
		t.Errorf("finetune --precision fp4: %v", err)
	}
	if _, err := run(t, "--precision", "fp16", "demo", "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "training runs in fp32") {
		t.Errorf("demo --precision fp16: %v", err)
	}
	// A config's fp16 loss scale does not survive --precision bf16 silently.
	tiny, err := filepath.Abs(filepath.Join(tinyTestDir, "tiny-retrieval"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "pretrain.json")
	js := fmt.Sprintf(`{"model_config": %q, "vocab": %q, "precision": "fp16", "loss_scale": 1024}`,
		filepath.Join(tiny, "config.json"), filepath.Join(tiny, "vocab.txt"))
	if err := os.WriteFile(cfg, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "--precision", "fp16", "pretrain", "--config", cfg, "--data", "none.json", "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("pretrain --precision fp16 with loss_scale: %v, want only the missing data refused", err)
	}
	if _, err := run(t, "--precision", "bf16", "pretrain", "--config", cfg, "--data", "none.json", "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "loss_scale") {
		t.Errorf("pretrain --precision bf16 with loss_scale: %v", err)
	}
}
