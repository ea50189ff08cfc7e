package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"blip/blip/capfilt"
)

func capfiltCmd() *cli.Command {
	d := capfilt.DefaultOptions()
	return &cli.Command{
		Name:  "capfilt",
		Usage: "BLIP CapFilt: caption web images with a captioner, keep the pairs a filter's ITM head accepts",
		Description: `For every image of --data (BLIP annotation JSON: [{"image", "caption"}], caption a
string or a list), the captioner (HF BlipForConditionalGeneration folder) samples
--samples-per-image synthetic captions (nucleus sampling as BLIP's generate(sample=True):
top-p 0.9, top-k 50 (transformers' default, in effect in BLIP), repetition penalty 1.1,
max length 30, min length 10, both counting [DEC] and the prompt; --beam N for beam
search instead, repetition penalty then 1.0 unless given). The filter (HF
BlipForImageTextRetrieval folder) scores the web caption(s) and the synthetic ones with
ITM, p = softmax(itm_logits)[1]; pairs with p >= --threshold are kept.

Writes OUT.json ([{"image","caption","source":"web"|"synthetic","score"}] plus the --human
pairs, "source":"human", unfiltered; ready for 'blip pretrain --data OUT.json'),
OUT.summary.json (kept/removed per source, failed images, settings) and OUT.html (the first
images with kept captions in green and removed ones in red).

Resumable: every batch is appended to OUT.json.partial.jsonl (fsynced); running the same
command again skips the images it holds and writes the same OUT.json. Seeds are derived per
image from --seed and the image path, so resumed and sharded runs give the same captions.

Sharding: --shard i/N takes the images whose index (among the distinct images of --data)
is i modulo N; the human pairs go to shard 0 only. Merge the shard outputs with
  blip capfilt merge --out ALL.json OUT0.json OUT1.json ...
which concatenates them and sums their summaries.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "captioner", Usage: "HF folder of the captioner (BlipForConditionalGeneration)"},
			&cli.StringFlag{Name: "filter", Usage: "HF folder of the filter (BlipForImageTextRetrieval)"},
			&cli.StringFlag{Name: "data", Usage: "web annotation JSON: [{\"image\", \"caption\"}]"},
			&cli.StringFlag{Name: "image-root", Usage: "folder the \"image\" fields are relative to"},
			&cli.StringFlag{Name: "human", Usage: "human-annotated annotation JSON copied through (source \"human\")"},
			&cli.StringFlag{Name: "out", Usage: "output annotation JSON (also OUT.summary.json, OUT.html)"},
			&cli.IntFlag{Name: "samples-per-image", Value: d.SamplesPerImage, Usage: "synthetic captions per image"},
			&cli.Float64Flag{Name: "top-p", Value: d.TopP, Usage: "nucleus sampling mass"},
			&cli.IntFlag{Name: "top-k", Value: d.TopK, Usage: "top-k before nucleus (0: off; 50 is transformers' default that BLIP ran with)"},
			&cli.Float64Flag{Name: "temperature", Value: d.Temperature, Usage: "sampling temperature"},
			&cli.Float64Flag{Name: "repetition-penalty", Value: d.RepetitionPenalty, Usage: "repetition penalty (default 1.1 when sampling, 1.0 with --beam)"},
			&cli.IntFlag{Name: "max-length", Value: d.MaxLength, Usage: "maximum caption length in tokens, counting [DEC] and the prompt"},
			&cli.IntFlag{Name: "min-length", Value: d.MinLength, Usage: "minimum caption length in tokens, counting [DEC] and the prompt"},
			&cli.IntFlag{Name: "beam", Value: 0, Usage: "beam search with N beams instead of sampling (0: sample)"},
			&cli.StringFlag{Name: "prompt", Value: d.Prompt, Usage: "prompt the captions continue (removed from the output)"},
			&cli.Float64Flag{Name: "threshold", Value: d.Threshold, Usage: "keep pairs with ITM p(match) >= threshold"},
			&cli.IntFlag{Name: "max-words", Value: d.MaxWords, Usage: "pre_caption word limit of the texts the filter scores (0: raw text)"},
			&cli.IntFlag{Name: "max-text-tokens", Value: d.MaxTextTokens, Usage: "filter text length in tokens, [CLS] and [SEP] included"},
			&cli.IntFlag{Name: "batch", Value: d.Batch, Usage: "images per batch (one journal write each)"},
			&cli.StringFlag{Name: "shard", Value: "0/1", Usage: "i/N: process the images with index % N == i"},
			&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "sampling seed (per image: mixed with the image path)"},
			&cli.IntFlag{Name: "html-images", Value: d.HTMLImages, Usage: "images on the OUT.html sample page"},
			&cli.IntFlag{Name: "max-batches", Usage: "stop after this many batches, keeping the journal to resume (0: run to the end)"},
			&cli.BoolFlag{Name: "keep-journal", Usage: "keep OUT.json.partial.jsonl after success"},
		},
		Action: capfiltRun,
		Subcommands: []*cli.Command{{
			Name:      "merge",
			Usage:     "concatenate capfilt shard outputs and sum their summaries",
			ArgsUsage: "OUT0.json OUT1.json ...",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "out", Required: true, Usage: "merged annotation JSON"},
			},
			Action: func(c *cli.Context) error {
				sum, err := capfilt.Merge(c.Args().Slice(), c.String("out"))
				if err != nil {
					return err
				}
				printCapfiltSummary(c.String("out"), sum)
				return nil
			},
		}},
	}
}

func capfiltRun(c *cli.Context) error {
	for _, f := range []string{"captioner", "filter", "data", "out"} {
		if c.String(f) == "" {
			return fmt.Errorf("capfilt: --%s is required", f)
		}
	}
	if c.NArg() > 0 {
		return fmt.Errorf("capfilt: unexpected argument %q (subcommand: merge)", c.Args().First())
	}
	o := capfilt.DefaultOptions()
	o.SamplesPerImage, o.TopP, o.TopK = c.Int("samples-per-image"), c.Float64("top-p"), c.Int("top-k")
	o.Temperature, o.RepetitionPenalty = c.Float64("temperature"), c.Float64("repetition-penalty")
	o.MaxLength, o.MinLength, o.Prompt = c.Int("max-length"), c.Int("min-length"), c.String("prompt")
	if n := c.Int("beam"); n > 0 {
		o.Beams = n
		if !c.IsSet("repetition-penalty") {
			o.RepetitionPenalty = 1 // BLIP's beam search default
		}
	}
	o.Threshold, o.MaxWords, o.MaxTextTokens = c.Float64("threshold"), c.Int("max-words"), c.Int("max-text-tokens")
	o.Batch, o.Seed, o.HTMLImages = c.Int("batch"), c.Uint64("seed"), c.Int("html-images")
	o.MaxBatches, o.KeepJournal = c.Int("max-batches"), c.Bool("keep-journal")
	var err error
	if o.Shard, o.Shards, err = capfilt.ParseShard(c.String("shard")); err != nil {
		return err
	}
	// Cheap checks first: annotation files and model kinds.
	images, err := capfilt.ReadWeb(c.String("data"), c.String("image-root"))
	if err != nil {
		return fmt.Errorf("capfilt: --data: %w", err)
	}
	var human []capfilt.Entry
	if h := c.String("human"); h != "" {
		if human, err = capfilt.ReadHuman(h); err != nil {
			return fmt.Errorf("capfilt: --human: %w", err)
		}
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	ms, err := capfilt.OpenModels(be, c.String("captioner"), c.String("filter"))
	if err != nil {
		return err
	}
	defer ms.Close()
	if err := applyPrecision(c, ms.Captioner, ms.Filter); err != nil {
		return err
	}
	var bar *progressbar.ProgressBar
	t0 := time.Now()
	first := -1
	o.Progress = func(done, total int) {
		if bar == nil {
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription("capfilt"),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("img"))
			first = done
		}
		bar.Set(done)
	}
	o.Warn = os.Stderr
	sum, err := capfilt.Run(be, ms, images, human, c.String("out"), o)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
	if errors.Is(err, capfilt.ErrIncomplete) {
		fmt.Fprintf(os.Stderr, "blip: capfilt: stopped after %d batches; the journal %s holds the work done, run the same command again to resume\n",
			o.MaxBatches, capfilt.JournalPath(c.String("out")))
		return nil
	}
	if err != nil {
		return err
	}
	if first >= 0 && sum.Images > first {
		fmt.Fprintf(os.Stderr, "blip: capfilt: %d images in %.1fs (%.2f images/s)\n", sum.Images-first, time.Since(t0).Seconds(),
			float64(sum.Images-first)/time.Since(t0).Seconds())
	}
	printCapfiltSummary(c.String("out"), sum)
	return nil
}

func printCapfiltSummary(out string, sum *capfilt.Summary) {
	fmt.Printf("%s: threshold %g, %d images (%d unreadable)\n", out, sum.Threshold, sum.Images, sum.ImagesFailed)
	for _, src := range []string{capfilt.SourceWeb, capfilt.SourceSynthetic, capfilt.SourceHuman} {
		n := sum.Counts[src]
		fmt.Printf("  %-9s kept %d, removed %d\n", src, n.Kept, n.Removed)
	}
	fmt.Printf("summary %s, sample page %s\n", capfilt.SummaryPath(out), capfilt.HTMLPath(out))
}
