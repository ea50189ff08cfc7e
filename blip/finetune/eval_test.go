package finetune

import (
	"path/filepath"
	"testing"

	"blip/blip"
	"blip/blip/eval"
	"blip/gpu/cpu"
)

// TestCaptionFinetuneImprovesEval: fine-tuning the tiny captioning model
// on its four images' captions raises the captioning evaluation's CIDEr
// and BLEU-4 on those captions (blip eval's scorer, as pycocoevalcap).
func TestCaptionFinetuneImprovesEval(t *testing.T) {
	be := cpu.New()
	ann := writeJSON(t, []map[string]any{
		{"image": "astronaut.png", "caption": []string{"an astronaut holding a flag"}},
		{"image": "chelsea.png", "caption": []string{"a cat sitting on a table"}},
		{"image": "coffee.png", "caption": []string{"a cup of coffee on a table"}},
		{"image": "rocket.jpg", "caption": []string{"a rocket on the launch pad"}},
	})
	entries, err := eval.LoadCaption(ann, filepath.Join(tinyDir, "images"), eval.FormatAuto, 0)
	if err != nil {
		t.Fatal(err)
	}
	score := func(dir string) eval.CaptionMetrics {
		env, err := eval.Open(be, dir, "caption", blip.KindCaptioning)
		if err != nil {
			t.Fatal(err)
		}
		defer env.Close()
		res, err := eval.Caption(env, entries, eval.CaptionOptions{MaxLength: 16})
		if err != nil {
			t.Fatal(err)
		}
		return *res.Metrics
	}
	init := filepath.Join(tinyDir, "tiny-captioning")
	before := score(init)
	cfg := testConfig("caption", init)
	cfg.Epochs, cfg.InitLR = 20, 2e-3
	sum, _ := runFinetune(t, cfg, captionData(t, 8), t.TempDir(), Options{})
	after := score(sum.Model)
	t.Logf("CIDEr %.3f -> %.3f, BLEU-4 %.3f -> %.3f", before.CIDEr, after.CIDEr, before.Bleu4, after.Bleu4)
	if !(after.CIDEr > before.CIDEr+1) || !(after.Bleu4 > before.Bleu4) {
		t.Errorf("fine-tuning did not improve the evaluation: CIDEr %.3f -> %.3f, BLEU-4 %.3f -> %.3f", before.CIDEr, after.CIDEr, before.Bleu4, after.Bleu4)
	}
}
