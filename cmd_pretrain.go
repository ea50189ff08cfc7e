package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"blip/blip/pretrain"
	"blip/data/dataset"
)

func pretrainCmd() *cli.Command {
	return &cli.Command{
		Name:  "pretrain",
		Usage: "pretrain BLIP (ITC + ITM + LM) on image-text pairs; resumable, exports HF folders",
		Description: "The config is a JSON file named after BLIP's configs/pretrain.yaml (batch_size, max_epoch,\n" +
			"queue_size, alpha, momentum, init_lr, warmup_lr, min_lr, warmup_steps, lr_decay_rate,\n" +
			"weight_decay, ...) with the model's HF config.json under \"model\" (or a path in\n" +
			"\"model_config\") and \"vocab\". OUT receives checkpoint/ (every checkpoint_every steps,\n" +
			"at each epoch's end and on Ctrl-C), metrics.jsonl, loss.png and hf/{captioning,retrieval,\n" +
			"vqa}: HF folders that transformers and `blip caption` load.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Required: true, Usage: "pretraining config JSON"},
			&cli.StringSliceFlag{Name: "data", Required: true, Usage: "BLIP-style JSON annotation files, or webdataset shards (brace patterns such as shards/{00000..00099}.tar); repeat or comma-separate"},
			&cli.StringFlag{Name: "image-root", Usage: "folder the JSON files' image paths are relative to"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output folder"},
			&cli.BoolFlag{Name: "resume", Usage: "continue from OUT/checkpoint"},
			&cli.BoolFlag{Name: "strict", Usage: "stop at the first unreadable image or empty caption instead of skipping it"},
		},
		Action: runPretrain,
	}
}

// openPairs opens the training data: JSON annotation files or webdataset
// shards (not both).
func openPairs(specs []string, root string) (dataset.Dataset, error) {
	var jsons, tars []string
	for _, s := range specs {
		for _, p := range strings.Split(s, ",") {
			switch {
			case p == "":
			case strings.HasSuffix(strings.ToLower(p), ".json"):
				jsons = append(jsons, p)
			case strings.Contains(p, ".tar"):
				tars = append(tars, p)
			default:
				return nil, fmt.Errorf("--data %s: neither a .json annotation file nor .tar shards", p)
			}
		}
	}
	switch {
	case len(jsons) > 0 && len(tars) > 0:
		return nil, fmt.Errorf("--data mixes JSON annotations and tar shards: give one kind")
	case len(jsons) > 0:
		if root == "" {
			root = filepath.Dir(jsons[0])
		}
		return dataset.ReadPairs(root, dataset.JSONOptions{}, jsons...)
	case len(tars) > 0:
		return dataset.NewWebDataset(tars...)
	}
	return nil, fmt.Errorf("--data names no files")
}

func runPretrain(c *cli.Context) error {
	cfg, err := pretrain.Load(c.String("config"))
	if err != nil {
		return err
	}
	if err := trainingPrecision(c, &cfg.Precision); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil { // --precision against the config's loss_scale
		return fmt.Errorf("%s with --precision %s: %w", c.String("config"), c.String("precision"), err)
	}
	ds, err := openPairs(c.StringSlice("data"), c.String("image-root"))
	if err != nil {
		return err
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	out := c.String("out")

	stop, release := stopOnInterrupt()
	defer release()

	var bar *progressbar.ProgressBar
	opts := pretrain.Options{
		Out: out, Resume: c.Bool("resume"), Strict: c.Bool("strict"), Stop: stop,
		Begin: func(done, total int64) {
			fmt.Fprintf(os.Stderr, "pretraining on %s: %d of %d steps done, batch %d, out %s\n", be.Name(), done, total, cfg.BatchSize, out)
			bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowCount(),
				progressbar.OptionSetDescription("pretrain"), progressbar.OptionThrottle(200_000_000))
			bar.Set64(done)
		},
		Progress: func(m pretrain.Metrics, sps float64) {
			scale := lossScaleLog(bar, m.Step, m.LossScale, m.Skipped, m.SkippedSteps)
			bar.Describe(fmt.Sprintf("ep %d ita %.3f itm %.3f lm %.3f lr %.2g%s %.1f samples/s", m.Epoch, m.ITA, m.ITM, m.LM, m.LR, scale, sps))
			bar.Add(1)
		},
	}
	sum, err := pretrain.Run(cfg, be, ds, opts)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
	if sum != nil && (sum.Data.Skipped > 0) {
		fmt.Fprintf(os.Stderr, "data: %s\n", sum.Data)
	}
	if perr := pretrain.WriteLossPlot(out); perr != nil && err == nil {
		err = perr
	}
	if errors.Is(err, pretrain.ErrInterrupted) {
		fmt.Fprintf(os.Stderr, "stopped after step %d: checkpoint in %s; continue with --resume\n", sum.Steps, pretrain.CheckpointDir(out))
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Printf("pretrained %d steps in %s (%.1f samples/s); last loss %.4f (ita %.4f, itm %.4f, lm %.4f)\n",
		sum.Steps, sum.Elapsed.Round(1e9), float64(sum.Samples)/sum.Elapsed.Seconds(), sum.Last.Loss, sum.Last.ITA, sum.Last.ITM, sum.Last.LM)
	for _, k := range []string{"captioning", "retrieval", "vqa"} {
		if d, ok := sum.Exports[k]; ok {
			fmt.Printf("  %-10s %s\n", k, d)
		}
	}
	fmt.Printf("  metrics    %s\n  plot       %s\n", filepath.Join(out, "metrics.jsonl"), filepath.Join(out, "loss.png"))
	return nil
}

// lossScaleLog returns what an fp16 step adds to the progress line, its
// loss scale ("" without one), and prints a line when its update was
// skipped because the scaled gradients overflowed.
func lossScaleLog(bar *progressbar.ProgressBar, step int64, scale float64, skipped bool, nSkipped int64) string {
	if scale == 0 {
		return ""
	}
	exp := int(math.Round(math.Log2(scale)))
	if skipped {
		bar.Clear()
		fmt.Fprintf(os.Stderr, "step %d: gradients overflowed at loss scale 2^%d: update skipped (%d so far), scale backed off\n", step, exp, nSkipped)
	}
	return fmt.Sprintf(" scale 2^%d", exp)
}
