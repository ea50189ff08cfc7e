package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"blip/blip/demo"
)

func experimentCmd() *cli.Command {
	return &cli.Command{
		Name:  "experiment",
		Usage: "reproduce a claim of the BLIP paper at small scale on the shapes world",
		Subcommands: []*cli.Command{{
			Name: "capfilt",
			Usage: "BLIP's CapFilt (section 3.3, Table 1) in miniature: pretrain N on noisy web + human captions, fine-tune a captioner and a filter " +
				"from N on the human set, bootstrap the web captions, pretrain C from scratch on the result and an oracle on the true captions; " +
				"prints the table and writes capfilt_report.json and capfilt_report.md",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "out", Value: "capfilt-exp", Usage: "output folder (world, models, CapFilt outputs, report)"},
				&cli.BoolFlag{Name: "quick", Usage: "a run of a few minutes: the demo's quick world and model, no beam-search variant"},
				&cli.Int64Flag{Name: "seed", Value: 1, Usage: "world, noise, training and sampling seed"},
			},
			Action: runExperimentCapFilt,
		}},
	}
}

func runExperimentCapFilt(c *cli.Context) error {
	if err := fp32Only(c, "experiment capfilt"); err != nil {
		return err
	}
	o := demo.CapFiltDefaults()
	if c.Bool("quick") {
		o = demo.CapFiltQuick()
	}
	o.Demo.Out, o.Demo.Seed, o.Web.Seed = c.String("out"), c.Int64("seed"), c.Int64("seed")
	o.Demo.Log = os.Stderr
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	start := time.Now()
	rep, err := demo.RunCapFilt(o, be)
	if err != nil {
		return err
	}
	fmt.Print(rep.Table())
	fmt.Printf("\nbackend %s; wall %.1fs\n", rep.Backend, time.Since(start).Seconds())
	fmt.Printf("wrote %s, %s\n", filepath.Join(o.Demo.Out, "capfilt_report.json"), filepath.Join(o.Demo.Out, "capfilt_report.md"))
	return nil
}
