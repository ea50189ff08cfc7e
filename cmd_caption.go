package main

import (
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"blip/blip"
	"blip/data/preprocess"
)

func captionCmd() *cli.Command {
	return &cli.Command{
		Name:      "caption",
		Usage:     "caption images with a BLIP captioning model (HF folder), as transformers' generate does",
		ArgsUsage: "IMAGE|DIR...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "HF folder of a BlipForConditionalGeneration model"},
			&cli.StringFlag{Name: "prompt", Usage: "text the caption continues, e.g. \"a picture of\""},
			&cli.IntFlag{Name: "beams", Value: 1, Usage: "beam search width (1: greedy)"},
			&cli.IntFlag{Name: "max-length", Value: 20, Usage: "maximum length in tokens, counting [DEC] and the prompt (transformers' max_length)"},
			&cli.IntFlag{Name: "min-length", Value: 0, Usage: "minimum length in tokens, counting [DEC] and the prompt"},
			&cli.Float64Flag{Name: "repetition-penalty", Value: 1, Usage: "penalty for tokens already present"},
			&cli.BoolFlag{Name: "sample", Usage: "nucleus sampling instead of greedy/beam"},
			&cli.Float64Flag{Name: "top-p", Value: 0.9, Usage: "nucleus sampling mass"},
			&cli.Float64Flag{Name: "temperature", Value: 1, Usage: "sampling temperature"},
			&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "sampling seed"},
			&cli.IntFlag{Name: "batch", Value: 8, Usage: "images per batch"},
			&cli.BoolFlag{Name: "json", Usage: "JSON Lines on stdout"},
		},
		Action: caption,
	}
}

// imageArgs expands directories into their image files, sorted.
func imageArgs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		var files []string
		for _, e := range ents {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".jpg", ".jpeg", ".png", ".gif":
				files = append(files, filepath.Join(a, e.Name()))
			}
		}
		sort.Strings(files)
		out = append(out, files...)
	}
	return out, nil
}

func caption(c *cli.Context) error {
	paths, err := imageArgs(c.Args().Slice())
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return fmt.Errorf("caption: no images given")
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	m, tok, proc, err := openKind(c, be, "caption", blip.KindCaptioning)
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.CaptionConfig()
	cfg.MaxLength, cfg.MinLength = c.Int("max-length"), c.Int("min-length")
	cfg.NumBeams, cfg.RepetitionPenalty = c.Int("beams"), c.Float64("repetition-penalty")
	if c.Bool("sample") {
		cfg.DoSample, cfg.TopP, cfg.TopK = true, c.Float64("top-p"), 0
		cfg.Temperature, cfg.Seed = c.Float64("temperature"), c.Uint64("seed")
	}
	var prompt []int32
	if p := strings.TrimSpace(c.String("prompt")); p != "" {
		for _, id := range tok.Encode(p) {
			prompt = append(prompt, int32(id))
		}
	}
	batch := max(1, c.Int("batch"))
	var bar *progressbar.ProgressBar
	if len(paths) > batch {
		bar = progressbar.NewOptions(len(paths), progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription("captioning"), progressbar.OptionShowCount())
	}
	enc := json.NewEncoder(os.Stdout)
	failed := 0
	for start := 0; start < len(paths); start += batch {
		var imgs []image.Image
		var names []string
		for _, p := range paths[start:min(start+batch, len(paths))] {
			img, err := preprocess.Load(p)
			if err != nil {
				fmt.Fprintln(os.Stderr, "blip: caption:", err)
				failed++
				continue
			}
			imgs, names = append(imgs, img), append(names, p)
		}
		if bar != nil {
			bar.Add(min(batch, len(paths)-start))
		}
		if len(imgs) == 0 {
			continue
		}
		pixels, err := proc.Batch(imgs)
		if err != nil {
			return err
		}
		var prompts [][]int32
		if prompt != nil {
			for range imgs {
				prompts = append(prompts, prompt)
			}
		}
		out, err := m.GenerateCaptions(be, pixels, len(imgs), prompts, cfg)
		if err != nil {
			return err
		}
		for i, name := range names {
			ids := out.Sequences[i][:out.Lengths[i]]
			ints := make([]int, len(ids))
			for j, id := range ids {
				ints[j] = int(id)
			}
			text := tok.Decode(ints, true)
			if c.Bool("json") {
				if err := enc.Encode(map[string]any{"image": name, "caption": text, "token_ids": ids}); err != nil {
					return err
				}
			} else {
				fmt.Printf("%s\t%s\n", name, text)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("caption: %d of %d images could not be read", failed, len(paths))
	}
	return nil
}
