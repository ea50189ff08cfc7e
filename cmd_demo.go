package main

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"blip/blip/demo"
)

func demoCmd() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "generate the shapes world, pretrain a small BLIP from scratch (ITC+ITM+LM), fine-tune it for VQA, then caption, retrieve and answer questions on held-out images; prints the metrics next to chance and writes metrics.json, loss.png and report.html",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Value: "demo-out", Usage: "output folder (world, HF exports, metrics, report)"},
			&cli.IntFlag{Name: "budget", Usage: "training steps (0: the mode's default)"},
			&cli.BoolFlag{Name: "quick", Usage: "a run of under a minute: smaller world, model and budget"},
			&cli.IntFlag{Name: "n", Usage: "images in the world, all splits (0: the mode's default)"},
			&cli.IntFlag{Name: "max-objects", Usage: "objects per image 1..K (0: the mode's default)"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "world and training seed"},
			&cli.IntFlag{Name: "beams", Value: 3, Usage: "caption beam width (1: greedy)"},
			&cli.StringFlag{Name: "prompt", Usage: "caption prompt, e.g. \"a picture of\" (the demo model is pretrained without one)"},
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	if err := fp32Only(c, "demo"); err != nil {
		return err
	}
	o := demo.Defaults()
	if c.Bool("quick") {
		o = demo.Quick()
	}
	o.Out, o.Seed, o.Beams, o.Prompt = c.String("out"), c.Int64("seed"), c.Int("beams"), c.String("prompt")
	if v := c.Int("budget"); v > 0 {
		o.Steps = v
	}
	if v := c.Int("n"); v > 0 {
		o.N = v
	}
	if v := c.Int("max-objects"); v > 0 {
		o.MaxObjects = v
	}
	o.Log = os.Stderr
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	start := time.Now()
	res, err := demo.Run(o, be)
	if err != nil {
		return err
	}
	fmt.Print(res.Table())
	fmt.Printf("\nbackend %s, %d steps, %.0f samples/s; wall %.1fs (world %.1fs, pretrain %.1fs, vqa %.1fs, evaluate %.1fs)\n",
		res.Backend, res.Steps, res.SamplesPerSec, time.Since(start).Seconds(), res.Timing["world"], res.Timing["pretrain"], res.Timing["vqa"], res.Timing["evaluate"])
	fmt.Printf("wrote %s/metrics.json, %s/metrics.jsonl, %s/loss.png, %s/report.html\n", o.Out, o.Out, o.Out, o.Out)
	return nil
}
