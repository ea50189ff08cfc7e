package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"blip/blip"
)

func itmCmd() *cli.Command {
	return &cli.Command{
		Name:  "itm",
		Usage: "score image-text pairs with a BLIP retrieval model (HF folder): ITM match probability and ITC cosine",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "HF folder of a BlipForImageTextRetrieval model"},
			&cli.StringSliceFlag{Name: "image", Required: true, Usage: "image file (repeat for several)"},
			&cli.StringSliceFlag{Name: "text", Required: true, Usage: "text to match (repeat for several)"},
			&cli.BoolFlag{Name: "json", Usage: "JSON Lines on stdout"},
		},
		Action: itm,
	}
}

// itm scores every text against every image. The vision encoder runs once
// per image (MatchTexts), not once per pair.
func itm(c *cli.Context) error {
	images, texts := c.StringSlice("image"), c.StringSlice("text")
	for i, s := range texts {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("itm: text %d is empty", i+1)
		}
	}
	for _, p := range images {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("itm: %w", err)
		}
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	m, tok, proc, err := openKind(c, be, "itm", blip.KindRetrieval)
	if err != nil {
		return err
	}
	defer m.Close()
	pixels, err := loadPixels(proc, images)
	if err != nil {
		return err
	}
	ids := make([][]int32, len(texts))
	for i, s := range texts {
		ids[i] = encodeText(tok, s)
	}
	res, err := m.MatchTexts(be, pixels, len(images), ids)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for i, img := range images {
		for j, text := range texts {
			r := res[i][j]
			if !c.Bool("json") {
				fmt.Printf("%s\t%s\titm %.4f\tcosine %.4f\n", img, text, r.ITMScore, r.Cosine)
				continue
			}
			if err := enc.Encode(map[string]any{
				"image": img, "text": text, "itm_score": r.ITMScore,
				"itm_logits": r.ITMLogits[:], "itc_cosine": r.Cosine,
			}); err != nil {
				return err
			}
		}
	}
	return nil
}
