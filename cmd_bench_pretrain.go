package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"time"

	"github.com/urfave/cli/v2"

	"blip/blip"
	"blip/blip/pretrain"
	"blip/gpu/bench"
)

// Pretraining model sizes for `blip bench pretrain`: "tiny" is the golden
// test model's shape, "base" BLIP's ViT-B/16 at 224px with BERT-base
// (transformers' default BlipConfig).
var benchPretrainConfigs = map[string]string{
	"tiny": `{"architectures": ["BlipForImageTextRetrieval"], "image_text_hidden_size": 32,
		"text_config": {"bos_token_id": 135, "eos_token_id": 3, "sep_token_id": 3, "pad_token_id": 0, "hidden_size": 64,
			"encoder_hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2,
			"max_position_embeddings": 64, "vocab_size": 137, "is_decoder": true},
		"vision_config": {"hidden_size": 64, "image_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
			"num_hidden_layers": 2, "patch_size": 16, "layer_norm_eps": 1e-05}}`,
	"base": `{"architectures": ["BlipForImageTextRetrieval"], "text_config": {"is_decoder": true}, "vision_config": {"image_size": 224}}`,
}

func benchPretrainCmd() *cli.Command {
	return &cli.Command{
		Name:  "pretrain",
		Usage: "samples/s of a full pretraining step (ITC + ITM + LM forward and backward, AdamW, momentum and queue updates) with random data",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "size", Value: "tiny", Usage: "tiny, or base (ViT-B/16 at 224px + BERT-base)"},
			&cli.IntFlag{Name: "batch", Value: 8, Usage: "batch size"},
			&cli.IntFlag{Name: "queue", Value: 57600, Usage: "queue size"},
			&cli.IntFlag{Name: "steps", Value: 3, Usage: "timed steps after one warm-up"},
			&cli.BoolFlag{Name: "json", Usage: "JSON output"},
			&cli.StringFlag{Name: "torch", Value: "auto", Usage: "python interpreter with PyTorch for the reference step (CPU); \"auto\" finds one, \"\" skips"},
		},
		Action: benchPretrain,
	}
}

func benchPretrain(c *cli.Context) error {
	size := c.String("size")
	model, ok := benchPretrainConfigs[size]
	if !ok {
		return fmt.Errorf("bench pretrain: --size %q: want tiny or base", size)
	}
	bcfg, err := blip.ParseConfig([]byte(model), "bench "+size)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "blip-bench-pretrain-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	vocab := dir + "/vocab.txt"
	var words []byte
	for i := range bcfg.TextConfig.VocabSize - 2 {
		switch i {
		case 0:
			words = append(words, "[PAD]\n"...)
		case 1:
			words = append(words, "[UNK]\n"...)
		case 2:
			words = append(words, "[CLS]\n"...)
		case 3:
			words = append(words, "[SEP]\n"...)
		default:
			words = append(words, fmt.Sprintf("w%d\n", i)...)
		}
	}
	words = append(words, "[DEC]\n[ENC]\n"...)
	if err := os.WriteFile(vocab, words, 0o644); err != nil {
		return err
	}
	js := fmt.Sprintf(`{"model": %s, "vocab": %q, "batch_size": %d, "queue_size": %d, "workers": 1}`, model, vocab, c.Int("batch"), c.Int("queue"))
	cfg, err := pretrain.Parse([]byte(js), dir+"/pretrain.json")
	if err != nil {
		return err
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	t0 := time.Now()
	tr, err := pretrain.NewTrainer(cfg, be, blip.RandomInit{Seed: 1, Std: 0.02}, 1000, bcfg.TextConfig.VocabSize-2, bcfg.TextConfig.VocabSize-1, 0)
	if err != nil {
		return err
	}
	build := time.Since(t0)
	v := &bcfg.VisionConfig
	bs, tl := cfg.BatchSize, cfg.MaxLength
	r := rand.New(rand.NewPCG(1, 2))
	b := &pretrain.Batch{Patches: make([]float32, bs*v.NumPatches()*3*v.PatchSize*v.PatchSize), IDs: make([]int32, bs*tl), Mask: make([]float32, bs*tl)}
	for i := range b.Patches {
		b.Patches[i] = float32(r.NormFloat64())
	}
	for i := range bs {
		n := 8 + r.IntN(tl-8)
		for j := range n {
			id := int32(4 + r.IntN(bcfg.TextConfig.VocabSize-6))
			switch j {
			case 0:
				id = 2
			case n - 1:
				id = 3
			}
			b.IDs[i*tl+j], b.Mask[i*tl+j] = id, 1
		}
	}
	if _, err := tr.Step(b); err != nil { // warm-up: pipelines, first-touch memory
		return err
	}
	steps := c.Int("steps")
	start := time.Now()
	var last pretrain.Metrics
	for range steps {
		if last, err = tr.Step(b); err != nil {
			return err
		}
	}
	sec := time.Since(start).Seconds() / float64(steps)
	res := map[string]any{
		"size": size, "backend": be.Name(), "batch": bs, "text_len": tl, "image_size": v.ImageSize, "queue": cfg.QueueSize,
		"params": tr.Model.Params.Numel(), "build_seconds": build.Seconds(),
		"seconds_per_step": sec, "samples_per_sec": float64(bs) / sec, "loss": last.Loss,
	}
	tr.Close()
	torch := c.String("torch")
	if torch == "auto" {
		torch = findTorchPython()
	}
	if torch != "" {
		t := &bcfg.TextConfig
		sizes, _ := json.Marshal(map[string]any{
			"h": t.HiddenSize, "heads": t.NumAttentionHeads, "layers": t.NumHiddenLayers, "inter": t.IntermediateSize,
			"vocab": t.VocabSize, "maxpos": t.MaxPositionEmbeddings, "vw": v.HiddenSize, "vheads": v.NumAttentionHeads,
			"vlayers": v.NumHiddenLayers, "vinter": v.IntermediateSize, "patch": v.PatchSize, "size": v.ImageSize,
			"embed": bcfg.ImageTextHiddenSize, "queue": cfg.QueueSize, "batch": bs, "textlen": tl, "steps": steps,
		})
		script := dir + "/torch_pretrain.py"
		if err := os.WriteFile(script, pretrain.TorchScript, 0o644); err != nil {
			return err
		}
		cmd := exec.Command(torch, script, string(sizes))
		cmd.Env = bench.TorchEnv()
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("bench pretrain: torch reference: %v\n%s", err, out)
		}
		var tres map[string]any
		if err := json.Unmarshal(bytes.TrimSpace(out), &tres); err != nil {
			return fmt.Errorf("bench pretrain: torch reference output %q: %v", out, err)
		}
		res["torch_cpu"] = tres
		if ts, ok := tres["samples_per_sec"].(float64); ok && ts > 0 {
			res["ratio_vs_torch"] = float64(bs) / sec / ts
		}
	}
	if c.Bool("json") {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("pretrain step, %s (%d parameters), %s, batch %d, %dpx, text %d, queue %d: %.3f s/step, %.2f samples/s (build %.1fs)\n",
		size, tr.Model.Params.Numel(), be.Name(), bs, v.ImageSize, tl, cfg.QueueSize, sec, float64(bs)/sec, build.Seconds())
	if tres, ok := res["torch_cpu"].(map[string]any); ok {
		fmt.Printf("PyTorch %v CPU (%v threads), same step: %.3f s/step, %.2f samples/s; blip/torch = %.2fx\n",
			tres["torch"], tres["threads"], tres["seconds_per_step"], tres["samples_per_sec"], res["ratio_vs_torch"])
	}
	return nil
}
