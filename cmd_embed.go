package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"blip/blip"
	"blip/data/safetensors"
)

func embedCmd() *cli.Command {
	return &cli.Command{
		Name:  "embed",
		Usage: "write normalised ITC embeddings of images and/or texts (BLIP retrieval model) to a safetensors file",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "HF folder of a BlipForImageTextRetrieval model"},
			&cli.StringSliceFlag{Name: "images", Usage: "image files or folders (repeat the flag)"},
			&cli.StringSliceFlag{Name: "texts", Usage: "texts (repeat the flag)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "safetensors file to write: image_embeds (N, D), text_embeds (M, D); metadata \"images\", \"texts\" (JSON lists)"},
		},
		Action: embed,
	}
}

func embed(c *cli.Context) error {
	images, err := imageArgs(c.StringSlice("images"))
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	texts := c.StringSlice("texts")
	if len(images) == 0 && len(texts) == 0 {
		return fmt.Errorf("embed: give --images or --texts")
	}
	for i, s := range texts {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("embed: text %d is empty", i+1)
		}
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	m, tok, proc, err := openKind(c, be, "embed", blip.KindRetrieval)
	if err != nil {
		return err
	}
	defer m.Close()
	d := int64(m.Config.ImageTextHiddenSize)
	w := safetensors.NewWriter()
	w.SetMetadata("model", c.String("model"))
	if len(images) > 0 {
		pixels, err := loadPixels(proc, images)
		if err != nil {
			return err
		}
		feat, err := m.ImageEmbeddings(be, pixels, len(images))
		if err != nil {
			return err
		}
		if err := w.AddFloat32("image_embeds", []int64{int64(len(images)), d}, feat); err != nil {
			return err
		}
		names, _ := json.Marshal(images)
		w.SetMetadata("images", string(names))
	}
	if len(texts) > 0 {
		ids := make([][]int32, len(texts))
		for i, s := range texts {
			ids[i] = encodeText(tok, s)
		}
		feat, err := m.TextEmbeddings(be, ids)
		if err != nil {
			return err
		}
		if err := w.AddFloat32("text_embeds", []int64{int64(len(texts)), d}, feat); err != nil {
			return err
		}
		js, _ := json.Marshal(texts)
		w.SetMetadata("texts", string(js))
	}
	return w.WriteFile(c.String("out"))
}
