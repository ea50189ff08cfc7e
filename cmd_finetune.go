package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"blip/blip/finetune"
	"blip/data/dataset"
)

func finetuneCmd() *cli.Command {
	return &cli.Command{
		Name:  "finetune",
		Usage: "fine-tune an HF BLIP folder for captioning, VQA or retrieval with BLIP's recipe; resumable",
		Description: "Defaults are BLIP's configs/caption_coco.yaml (lr 1e-5, 5 epochs, prompt \"a picture of \"),\n" +
			"vqa.yaml (lr 2e-5, 10 epochs) and retrieval_coco.yaml (lr 1e-5, 6 epochs, batch 32, queue_size\n" +
			"57600, alpha 0.4, momentum 0.995): AdamW, weight decay 0.05, per-epoch cosine decay, label\n" +
			"smoothing 0.1 (caption, vqa), RandomResizedCrop/flip/RandAugment. --config reads a JSON file of\n" +
			"the same names (task, init, batch_size, max_epoch, init_lr, min_lr, prompt, max_length,\n" +
			"answer_length, max_answers, augment, queue_size, alpha, momentum, init_temp, fixed_temp,\n" +
			"itm_token, ...); flags override it. --data: caption takes BLIP caption JSON ({image, caption}),\n" +
			"retrieval the same with image_id (coco_karpathy_train.json: captions of one image_id are\n" +
			"positives of each other), vqa takes BLIP VQA JSON ({question_id, question, answer, image, dataset}).\n" +
			"Retrieval trains ITC (momentum distillation, feature and id queues) + ITM (hard negatives)\n" +
			"from a BlipForImageTextRetrieval folder and writes one; ITM rows start with [CLS] as\n" +
			"transformers and `blip itm` score them (itm_token \"enc\": BLIP's [ENC]).\n" +
			"OUT receives checkpoint/ (each epoch, every checkpoint_every steps and on Ctrl-C),\n" +
			"metrics.jsonl and hf/, the fine-tuned folder.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "task", Usage: "caption, vqa or retrieval (or from --config)"},
			&cli.StringFlag{Name: "init", Usage: "HF folder to fine-tune (captioning for caption, VQA for vqa, retrieval for retrieval)"},
			&cli.StringFlag{Name: "config", Usage: "fine-tuning config JSON"},
			&cli.StringSliceFlag{Name: "data", Required: true, Usage: "annotation JSON files; repeat or comma-separate"},
			&cli.StringFlag{Name: "image-root", Usage: "folder the annotations' image paths are relative to (default: the first file's folder)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output folder"},
			&cli.IntFlag{Name: "epochs", Usage: "max_epoch (0: the config's)"},
			&cli.IntFlag{Name: "batch", Usage: "batch_size (0: the config's)"},
			&cli.Float64Flag{Name: "lr", Usage: "init_lr (0: the config's)"},
			&cli.IntFlag{Name: "queue-size", Usage: "retrieval: queue_size (0: the config's)"},
			&cli.BoolFlag{Name: "resume", Usage: "continue from OUT/checkpoint"},
			&cli.BoolFlag{Name: "strict", Usage: "stop at the first unreadable image or empty text instead of skipping it"},
		},
		Action: runFinetune,
	}
}

// finetuneConfig reads --config (or the task's defaults) and applies the
// flags.
func finetuneConfig(c *cli.Context) (*finetune.Config, error) {
	var cfg *finetune.Config
	if p := c.String("config"); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("finetune config: %w", err)
		}
		if cfg, err = finetune.Decode(data, p); err != nil {
			return nil, err
		}
	} else {
		d := finetune.Defaults(c.String("task"))
		cfg = &d
	}
	if t := c.String("task"); t != "" && t != cfg.Task {
		if c.String("config") != "" {
			return nil, fmt.Errorf("--task %s contradicts the config's task %q", t, cfg.Task)
		}
	}
	if v := c.String("init"); v != "" {
		cfg.Init = v
	}
	if v := c.Int("epochs"); v > 0 {
		cfg.Epochs = v
	}
	if v := c.Int("batch"); v > 0 {
		cfg.BatchSize = v
	}
	if v := c.Int("queue-size"); v > 0 {
		cfg.QueueSize = v
	}
	if v := c.Float64("lr"); v > 0 {
		cfg.InitLR = v
		cfg.MinLR = min(cfg.MinLR, v)
	}
	if err := trainingPrecision(c, &cfg.Precision); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	return cfg, nil
}

// openFinetuneData reads the task's annotation files.
func openFinetuneData(task string, files []string, root string) (dataset.Indexed, error) {
	var paths []string
	for _, s := range files {
		for _, p := range strings.Split(s, ",") {
			if p != "" {
				paths = append(paths, p)
			}
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("--data names no files")
	}
	if root == "" {
		root = filepath.Dir(paths[0])
	}
	if task == "caption" || task == "retrieval" {
		return dataset.ReadPairs(root, dataset.JSONOptions{}, paths...)
	}
	all := &dataset.VQASet{}
	for _, p := range paths {
		v, err := dataset.ReadVQAJSON(p, dataset.VQARoots{VQA: root, VG: root}, dataset.VQAOptions{})
		if err != nil {
			return nil, err
		}
		for _, q := range v.Questions {
			if len(q.Answers) == 0 {
				return nil, fmt.Errorf("%s: question %s (%q) has no answer: training needs answers", p, q.QuestionID, q.Question)
			}
		}
		all.Questions = append(all.Questions, v.Questions...)
	}
	return all, nil
}

func runFinetune(c *cli.Context) error {
	cfg, err := finetuneConfig(c)
	if err != nil {
		return err
	}
	ds, err := openFinetuneData(cfg.Task, c.StringSlice("data"), c.String("image-root"))
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
	opts := finetune.Options{
		Out: out, Resume: c.Bool("resume"), Strict: c.Bool("strict"), Stop: stop,
		Begin: func(done, total int64) {
			fmt.Fprintf(os.Stderr, "fine-tuning %s for %s on %s: %d of %d steps done, batch %d, out %s\n", cfg.Init, cfg.Task, be.Name(), done, total, cfg.BatchSize, out)
			bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowCount(),
				progressbar.OptionSetDescription("finetune"), progressbar.OptionThrottle(200_000_000))
			bar.Set64(done)
		},
		Progress: func(m finetune.Metrics, sps float64) {
			scale := lossScaleLog(bar, m.Step, m.LossScale, m.Skipped, m.SkippedSteps)
			if cfg.Task == "retrieval" {
				bar.Describe(fmt.Sprintf("ep %d loss %.4f (ita %.4f itm %.4f) lr %.2g%s %.1f samples/s", m.Epoch, m.Loss, m.ITA, m.ITM, m.LR, scale, sps))
			} else {
				bar.Describe(fmt.Sprintf("ep %d loss %.4f lr %.2g%s %.1f samples/s", m.Epoch, m.Loss, m.LR, scale, sps))
			}
			bar.Add(1)
		},
	}
	sum, err := finetune.Run(cfg, be, ds, opts)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
	if sum != nil && sum.Data.Skipped > 0 {
		fmt.Fprintf(os.Stderr, "data: %s\n", sum.Data)
	}
	if errors.Is(err, finetune.ErrInterrupted) {
		fmt.Fprintf(os.Stderr, "stopped after step %d: checkpoint in %s; continue with --resume\n", sum.Steps, finetune.CheckpointDir(out))
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Printf("fine-tuned %d steps in %s (%.1f samples/s); last loss %.4f\n  model      %s\n  metrics    %s\n",
		sum.Steps, sum.Elapsed.Round(1e9), float64(sum.Samples)/sum.Elapsed.Seconds(), sum.Last.Loss, sum.Model, filepath.Join(out, "metrics.jsonl"))
	return nil
}
