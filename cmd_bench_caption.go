package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"blip/blip"
)

// Model sizes for `blip bench caption`: random weights, so only speed means
// anything. "tiny" is the golden test model's shape; "base" is
// Salesforce/blip-image-captioning-base (ViT-B/16 at 384px, BERT-base
// decoder with cross-attention), transformers' default BlipConfig.
var benchConfigs = map[string]string{
	"tiny": `{"architectures": ["BlipForConditionalGeneration"], "projection_dim": 32, "image_text_hidden_size": 32,
		"text_config": {"bos_token_id": 135, "eos_token_id": 3, "sep_token_id": 3, "pad_token_id": 0, "hidden_size": 64,
			"encoder_hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2,
			"max_position_embeddings": 64, "vocab_size": 137, "is_decoder": true},
		"vision_config": {"hidden_size": 64, "image_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
			"num_hidden_layers": 2, "patch_size": 16, "layer_norm_eps": 1e-05}}`,
	"base": `{"architectures": ["BlipForConditionalGeneration"], "text_config": {}, "vision_config": {"image_size": 384}}`,
}

func benchCaptionCmd() *cli.Command {
	return &cli.Command{
		Name:  "caption",
		Usage: "caption latency and throughput with random weights: exactly N new tokens per image",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "size", Value: "tiny", Usage: "tiny or base (ViT-B/16 at 384px + BERT-base decoder)"},
			&cli.StringFlag{Name: "batch", Value: "1,32", Usage: "batch sizes, comma-separated"},
			&cli.StringFlag{Name: "beams", Value: "1,3", Usage: "beam widths, comma-separated"},
			&cli.IntFlag{Name: "tokens", Value: 20, Usage: "new tokens per caption (forced)"},
			&cli.IntFlag{Name: "reps", Value: 2, Usage: "timed repetitions after one warm-up"},
			&cli.BoolFlag{Name: "json", Usage: "JSON output"},
		},
		Action: benchCaption,
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a list of positive integers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func benchCaption(c *cli.Context) error {
	cfgJSON, ok := benchConfigs[c.String("size")]
	if !ok {
		return fmt.Errorf("bench caption: --size %q: want tiny or base", c.String("size"))
	}
	batches, err := ints(c.String("batch"))
	if err != nil {
		return fmt.Errorf("bench caption: --batch: %w", err)
	}
	beams, err := ints(c.String("beams"))
	if err != nil {
		return fmt.Errorf("bench caption: --beams: %w", err)
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	dir, err := os.MkdirTemp("", "blip-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := blip.WriteRandomFolder(dir, []byte(cfgJSON), 1); err != nil {
		return err
	}
	m, err := blip.LoadDir(dir, be)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := applyPrecision(c, m); err != nil {
		return err
	}
	s := m.Config.VisionConfig.ImageSize
	type row struct {
		Size        string  `json:"size"`
		Backend     string  `json:"backend"`
		Device      string  `json:"device"`
		Batch       int     `json:"batch"`
		Beams       int     `json:"beams"`
		Tokens      int     `json:"new_tokens"`
		SecPerBatch float64 `json:"s_per_batch"`
		ImagesPerS  float64 `json:"images_per_s"`
	}
	var rows []row
	for _, b := range batches {
		pixels := make([]float32, b*3*s*s)
		for i := range pixels {
			pixels[i] = float32((i*7919)%255)/127.5 - 1
		}
		for _, k := range beams {
			gen := m.CaptionConfig()
			gen.NumBeams, gen.MaxNewTokens, gen.MinNewTokens = k, c.Int("tokens"), c.Int("tokens")
			if _, err := m.GenerateCaptions(be, pixels, b, nil, gen); err != nil { // warm-up: plans, pipelines
				return err
			}
			t := time.Now()
			for r := 0; r < c.Int("reps"); r++ {
				if _, err := m.GenerateCaptions(be, pixels, b, nil, gen); err != nil {
					return err
				}
			}
			per := time.Since(t).Seconds() / float64(c.Int("reps"))
			rows = append(rows, row{c.String("size"), be.Name(), be.Info().Name, b, k, c.Int("tokens"), per, float64(b) / per})
			if !c.Bool("json") {
				fmt.Printf("%s %s batch %d beams %d: %.3f s per batch, %.2f images/s\n", c.String("size"), be.Name(), b, k, per, float64(b)/per)
			}
		}
	}
	if c.Bool("json") {
		return json.NewEncoder(os.Stdout).Encode(rows)
	}
	return nil
}
