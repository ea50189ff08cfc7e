package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"blip/data/shapes"
)

func shapesCmd() *cli.Command {
	def := shapes.DefaultConfig()
	return &cli.Command{
		Name:  "shapes",
		Usage: "generate the synthetic shapes world (images, captions, VQA, ground truth, vocab)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Required: true, Usage: "output folder"},
			&cli.IntFlag{Name: "n", Value: 1000, Usage: "number of images, all splits together"},
			&cli.Int64Flag{Name: "seed", Value: 0, Usage: "same seed, same bytes"},
			&cli.IntFlag{Name: "size", Value: def.Size, Usage: "image width and height in pixels"},
			&cli.IntFlag{Name: "max-objects", Value: def.MaxObjects, Usage: "each image holds 1..K objects"},
			&cli.Float64Flag{Name: "noise", Value: def.Noise, Usage: "background texture and pixel noise in [0, 1]"},
			&cli.IntFlag{Name: "captions", Value: def.Captions, Usage: "paraphrases per image"},
			&cli.Float64Flag{Name: "train", Value: def.Train, Usage: "train fraction"},
			&cli.Float64Flag{Name: "val", Value: def.Val, Usage: "validation fraction"},
			&cli.Float64Flag{Name: "test", Value: def.Test, Usage: "test fraction"},
			&cli.BoolFlag{Name: "flatten-train", Usage: "train.json with one entry per caption (as coco_karpathy_train)"},
		},
		Action: func(c *cli.Context) error {
			cfg := def
			cfg.N, cfg.Seed, cfg.Size = c.Int("n"), c.Int64("seed"), c.Int("size")
			cfg.MaxObjects, cfg.Noise, cfg.Captions = c.Int("max-objects"), c.Float64("noise"), c.Int("captions")
			cfg.Train, cfg.Val, cfg.Test = c.Float64("train"), c.Float64("val"), c.Float64("test")
			d, err := shapes.Generate(cfg)
			if err != nil {
				return err
			}
			if err := shapes.Write(c.String("out"), d, shapes.WriteOptions{FlattenTrain: c.Bool("flatten-train")}); err != nil {
				return err
			}
			for _, s := range shapes.Splits() {
				fmt.Printf("%s: %d images\n", s, len(d.Split(s)))
			}
			fmt.Printf("wrote %s\n", c.String("out"))
			return nil
		},
	}
}
