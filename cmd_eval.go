package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"blip/blip"
	"blip/blip/eval"
	"blip/data/dataset"
)

func evalCmd() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "evaluate a BLIP model (HF folder) on retrieval, captioning or VQA as salesforce/BLIP's evaluation does; writes OUTDIR/metrics.json and per-item results",
		Description: `retrieval: ITC cosine of every image-text pair, the top --k of every query re-ranked with
ITM (score = ITM match logit + cosine, others -100), TR/IR R@1/5/10 as BLIP's itm_eval;
results.jsonl holds every query's rank and top 10.
caption: beam search continuing --prompt, BLEU-1..4 and CIDEr (COCOEvalCap, PTB-tokenised)
against the annotation file's captions; results.json is BLIP's [{"image_id", "caption"}].
vqa: answers generated, or ranked from --answer-list (top --k by first token); VQA accuracy when
the questions have answers; results.json is BLIP's [{"question_id", "answer"}].
OUTDIR is written atomically (built aside, then renamed into place).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "task", Required: true, Usage: "retrieval, caption or vqa"},
			&cli.StringFlag{Name: "model", Required: true, Usage: "HF folder: BlipForImageTextRetrieval (retrieval), BlipForConditionalGeneration (caption), BlipForQuestionAnswering (vqa)"},
			&cli.StringFlag{Name: "data", Required: true, Usage: "annotation file: BLIP/COCO Karpathy/Flickr30k eval JSON, BLIP's VQA JSON or the official VQA v2 questions file"},
			&cli.StringFlag{Name: "annotations", Usage: "vqa-official: the VQA v2 annotations file (omit for test splits)"},
			&cli.StringFlag{Name: "image-root", Usage: "folder the annotation image paths are relative to"},
			&cli.StringFlag{Name: "vg-root", Usage: "vqa: Visual Genome image root (BLIP's vg_root) for \"dataset\": \"vg\" entries"},
			&cli.StringFlag{Name: "format", Value: eval.FormatAuto, Usage: "auto, blip, coco, flickr or vqa-official"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output folder (replaced if it holds an earlier evaluation)"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "images per batch"},
			&cli.IntFlag{Name: "limit", Usage: "evaluate only the first N images (retrieval, caption) or questions (vqa)"},
			&cli.IntFlag{Name: "k", Value: 256, Usage: "retrieval: candidates re-ranked with ITM per query (BLIP: 256 COCO, 128 Flickr); vqa rank mode: answers re-scored (128)"},
			&cli.IntFlag{Name: "itm-batch", Value: 64, Usage: "retrieval: image-text pairs per ITM batch"},
			&cli.IntFlag{Name: "text-batch", Value: 128, Usage: "retrieval: texts per text-encoder batch"},
			&cli.BoolFlag{Name: "itm-enc", Usage: "retrieval: start ITM texts with [ENC] as salesforce/BLIP (default [CLS], as transformers)"},
			&cli.IntFlag{Name: "max-words", Value: 30, Usage: "retrieval: pre_caption word limit of the texts (BLIP: 30)"},
			&cli.IntFlag{Name: "beams", Usage: "beam width (caption 3, vqa 3)"},
			&cli.IntFlag{Name: "max-length", Usage: "maximum length in tokens counting [DEC] and the prompt (caption 20, vqa 10)"},
			&cli.IntFlag{Name: "min-length", Usage: "minimum length in tokens counting [DEC] and the prompt (caption 5, vqa 1)"},
			&cli.StringFlag{Name: "prompt", Value: eval.CaptionPrompt, Usage: "caption: text the captions continue, stripped from the results (\"\": none)"},
			&cli.StringFlag{Name: "answer-list", Usage: "vqa: answer_list.json; rank its answers instead of generating"},
		},
		Action: evalAction,
	}
}

// stageBar shows one progress bar per stage on stderr.
type stageBar struct {
	stage string
	bar   *progressbar.ProgressBar
}

func (s *stageBar) report(stage string, done, total int) {
	if stage != s.stage || s.bar == nil {
		if s.bar != nil {
			s.bar.Finish()
			fmt.Fprintln(os.Stderr)
		}
		s.stage = stage
		s.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(stage), progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond))
	}
	s.bar.Set(done)
}

func (s *stageBar) finish() {
	if s.bar != nil {
		s.bar.Finish()
		fmt.Fprintln(os.Stderr)
		s.bar = nil
	}
}

func evalAction(c *cli.Context) error {
	task := c.String("task")
	var want blip.ModelKind
	switch task {
	case "retrieval":
		want = blip.KindRetrieval
	case "caption":
		want = blip.KindCaptioning
	case "vqa":
		want = blip.KindQA
	default:
		return fmt.Errorf("eval: --task must be retrieval, caption or vqa, not %q", task)
	}
	data, root, format, limit := c.String("data"), c.String("image-root"), c.String("format"), c.Int("limit")
	if limit < 0 {
		return fmt.Errorf("eval: --limit %d < 0", limit)
	}
	if err := eval.CheckOutputDir(c.String("out")); err != nil {
		return err
	}
	// Read the annotations before loading the model: format errors come
	// first and cheaply.
	var load func(env *eval.Env, bar *stageBar) (map[string]any, []eval.Output, error)
	switch task {
	case "retrieval":
		ds, err := eval.LoadRetrieval(data, root, format, c.Int("max-words"), limit)
		if err != nil {
			return err
		}
		load = func(env *eval.Env, bar *stageBar) (map[string]any, []eval.Output, error) {
			return evalRetrieval(c, env, ds, bar)
		}
	case "caption":
		es, err := eval.LoadCaption(data, root, format, limit)
		if err != nil {
			return err
		}
		load = func(env *eval.Env, bar *stageBar) (map[string]any, []eval.Output, error) {
			return evalCaption(c, env, es, bar)
		}
	case "vqa":
		set, err := eval.LoadVQA(data, c.String("annotations"), root, c.String("vg-root"), format, limit)
		if err != nil {
			return err
		}
		var answers []string
		if f := c.String("answer-list"); f != "" {
			var err error
			if answers, err = dataset.ReadAnswerList(f); err != nil {
				return err
			}
		}
		load = func(env *eval.Env, bar *stageBar) (map[string]any, []eval.Output, error) {
			return evalVQA(c, env, set, answers, bar)
		}
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	env, err := eval.Open(be, c.String("model"), task, want)
	if err != nil {
		return err
	}
	defer env.Close()
	if err := applyPrecision(c, env.Model); err != nil {
		return err
	}
	bar := &stageBar{}
	t0 := time.Now()
	mt, files, err := load(env, bar)
	bar.finish()
	if err != nil {
		return err
	}
	mt["task"], mt["model"], mt["data"], mt["backend"] = task, c.String("model"), data, be.Name()
	mt["seconds"] = time.Since(t0).Seconds()
	f, err := eval.JSONFile(eval.MetricsFile, mt)
	if err != nil {
		return err
	}
	if err := eval.WriteOutputs(c.String("out"), append([]eval.Output{f}, files...)); err != nil {
		return err
	}
	os.Stdout.Write(f.Data)
	return nil
}

func evalRetrieval(c *cli.Context, env *eval.Env, ds *dataset.Retrieval, bar *stageBar) (map[string]any, []eval.Output, error) {
	res, err := eval.Retrieval(env, ds, eval.RetrievalOptions{
		K: c.Int("k"), Batch: c.Int("batch"), TextBatch: c.Int("text-batch"), ITMRows: c.Int("itm-batch"),
		ITMEncToken: c.Bool("itm-enc"), Progress: bar.report,
	})
	if err != nil {
		return nil, nil, err
	}
	mt := map[string]any{}
	raw, _ := json.Marshal(res.Recall)
	json.Unmarshal(raw, &mt)
	mt["itc"] = res.ITCRecall
	mt["images"], mt["texts"], mt["k"], mt["itm_pairs"] = len(ds.Entries), len(ds.Texts), res.K, res.Pairs
	mt["vision_passes"], mt["itm_first_token"] = res.VisionPasses, map[bool]string{false: "[CLS]", true: "[ENC]"}[c.Bool("itm-enc")]
	mt["text_seconds"], mt["image_seconds"], mt["itm_seconds"] = res.TextTime.Seconds(), res.ImageTime.Seconds(), res.ITMTime.Seconds()
	if s := res.ITMTime.Seconds(); s > 0 {
		mt["itm_pairs_per_second"] = float64(res.Pairs) / s
	}
	out, err := eval.JSONLinesFile("results.jsonl", eval.RetrievalRecords(ds, res, 10))
	if err != nil {
		return nil, nil, err
	}
	return mt, []eval.Output{out}, nil
}

func evalCaption(c *cli.Context, env *eval.Env, es []dataset.Entry, bar *stageBar) (map[string]any, []eval.Output, error) {
	opt := eval.CaptionOptions{
		Batch: c.Int("batch"), Beams: c.Int("beams"), MaxLength: c.Int("max-length"), MinLength: c.Int("min-length"),
		Prompt: c.String("prompt"), NoPrompt: c.String("prompt") == "", Progress: bar.report,
	}
	res, err := eval.Caption(env, es, opt)
	if err != nil {
		return nil, nil, err
	}
	mt := map[string]any{"images": len(res.Items), "prompt": c.String("prompt")}
	if res.Metrics != nil {
		raw, _ := json.Marshal(res.Metrics)
		json.Unmarshal(raw, &mt)
	}
	if s := res.Time.Seconds(); s > 0 {
		mt["images_per_second"] = float64(len(res.Items)) / s
	}
	blipFormat := make([]map[string]any, len(res.Items))
	for i, it := range res.Items {
		blipFormat[i] = map[string]any{"image_id": it.ImageID, "caption": it.Caption}
	}
	rj, err := eval.JSONFile("results.json", blipFormat)
	if err != nil {
		return nil, nil, err
	}
	rl, err := eval.JSONLinesFile("results.jsonl", res.Items)
	if err != nil {
		return nil, nil, err
	}
	return mt, []eval.Output{rj, rl}, nil
}

func evalVQA(c *cli.Context, env *eval.Env, set *dataset.VQASet, answers []string, bar *stageBar) (map[string]any, []eval.Output, error) {
	opt := eval.VQAOptions{
		Batch: c.Int("batch"), Beams: c.Int("beams"), MaxLength: c.Int("max-length"), MinLength: c.Int("min-length"),
		AnswerList: answers, Progress: bar.report,
	}
	if c.IsSet("k") {
		opt.K = c.Int("k")
	}
	res, err := eval.VQA(env, set, opt)
	if err != nil {
		return nil, nil, err
	}
	mt := map[string]any{"questions": len(res.Items), "mode": res.Mode}
	if res.Metrics != nil {
		mt["accuracy"], mt["scored_questions"] = res.Metrics.Accuracy, res.Metrics.Questions
	}
	if s := res.Time.Seconds(); s > 0 {
		mt["questions_per_second"] = float64(len(res.Items)) / s
	}
	blipFormat := make([]map[string]any, len(res.Items))
	for i, it := range res.Items {
		blipFormat[i] = map[string]any{"question_id": it.QuestionID, "answer": it.Answer}
	}
	rj, err := eval.JSONFile("results.json", blipFormat)
	if err != nil {
		return nil, nil, err
	}
	rl, err := eval.JSONLinesFile("results.jsonl", res.Items)
	if err != nil {
		return nil, nil, err
	}
	return mt, []eval.Output{rj, rl}, nil
}
