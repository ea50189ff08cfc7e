package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"blip/blip"
)

func convertCmd() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert an original salesforce/BLIP .pth checkpoint into a HuggingFace folder",
		ArgsUsage: "CHECKPOINT.pth",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Required: true, Usage: "config.json of the HF model to produce"},
			&cli.StringFlag{Name: "vocab", Usage: "vocab.txt to copy into the folder"},
			&cli.StringFlag{Name: "kind", Usage: "captioning, retrieval or vqa (default: the config's architectures)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output folder"},
			&cli.BoolFlag{Name: "overwrite", Usage: "replace a non-empty output folder"},
			&cli.BoolFlag{Name: "verbose", Usage: "list the entries not converted"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("convert: give one checkpoint file")
			}
			cfg, err := os.ReadFile(c.String("config"))
			if err != nil {
				return fmt.Errorf("convert: %w", err)
			}
			opts := blip.ConvertOptions{Config: cfg, ConfigPath: c.String("config"), VocabPath: c.String("vocab"), Overwrite: c.Bool("overwrite")}
			if k := c.String("kind"); k != "" {
				kind, ok := blip.ParseModelKind(k)
				if !ok {
					return fmt.Errorf("convert: --kind %q: want captioning, retrieval or vqa", k)
				}
				opts.Kind = kind
			}
			rep, err := blip.ConvertOriginal(c.Args().First(), c.String("out"), opts)
			if err != nil {
				return err
			}
			fmt.Printf("wrote %s: %d tensors (%v), %d entries dropped\n", c.String("out"), len(rep.Written), rep.Kind, len(rep.Dropped))
			if c.Bool("verbose") {
				for _, d := range rep.Dropped {
					fmt.Println("  dropped", d)
				}
			}
			return nil
		},
	}
}
