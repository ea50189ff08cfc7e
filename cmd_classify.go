package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"blip/blip"
	"blip/blip/eval"
)

func classifyCmd() *cli.Command {
	return &cli.Command{
		Name:      "classify",
		Usage:     "zero-shot image classification through ITC with a BLIP retrieval model (HF folder), as LAVIS offers",
		ArgsUsage: "IMAGE|DIR...",
		Description: `Each label fills the template; the image's ITC embedding is compared with each filled
template's text embedding, and softmax(cosine / temperature) over the labels gives the
probabilities. Prints, per image, the labels from most to least probable.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "HF folder of a BlipForImageTextRetrieval model"},
			&cli.StringFlag{Name: "labels", Required: true, Usage: "comma-separated class names"},
			&cli.StringFlag{Name: "template", Value: eval.DefaultTemplate, Usage: "text each label fills ({} is replaced by the label)"},
			&cli.Float64Flag{Name: "temperature", Value: eval.DefaultTemperature, Usage: "softmax temperature of the cosines (BLIP's initial ITC temperature)"},
			&cli.IntFlag{Name: "top", Usage: "print only the N most probable labels per image (0: all)"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "images per batch"},
			&cli.BoolFlag{Name: "json", Usage: "JSON Lines on stdout: {\"image\", \"labels\": [{\"label\", \"index\", \"prob\", \"cosine\"}...]}"},
		},
		Action: classifyAction,
	}
}

func classifyAction(c *cli.Context) error {
	var labels []string
	for _, l := range strings.Split(c.String("labels"), ",") {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, l)
		}
	}
	if len(labels) == 0 {
		return fmt.Errorf("classify: --labels names no label")
	}
	paths, err := imageArgs(c.Args().Slice())
	if err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	if len(paths) == 0 {
		return fmt.Errorf("classify: no images given")
	}
	if c.Float64("temperature") <= 0 {
		return fmt.Errorf("classify: --temperature must be > 0")
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	env, err := eval.Open(be, c.String("model"), "classify", blip.KindRetrieval)
	if err != nil {
		return err
	}
	defer env.Close()
	if err := applyPrecision(c, env.Model); err != nil {
		return err
	}
	res, err := eval.Classify(env, paths, labels, eval.ClassifyOptions{
		Template: c.String("template"), Temperature: c.Float64("temperature"), Batch: c.Int("batch"),
	})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for i, p := range paths {
		ls := res[i]
		if n := c.Int("top"); n > 0 && n < len(ls) {
			ls = ls[:n]
		}
		if c.Bool("json") {
			if err := enc.Encode(map[string]any{"image": p, "labels": ls}); err != nil {
				return err
			}
			continue
		}
		for _, l := range ls {
			fmt.Printf("%s\t%s\t%.4f\tcosine %.4f\n", p, l.Label, l.Prob, l.Cosine)
		}
	}
	return nil
}
