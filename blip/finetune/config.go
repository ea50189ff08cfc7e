// Package finetune fine-tunes BLIP HF folders on a task, as BLIP's
// train_caption.py and train_vqa.py do: AdamW with weight decay 0.05 and a
// per-epoch cosine decay of the learning rate, the task's loss, and an HF
// folder of the same kind written at the end (and at every epoch's end),
// with checkpoints that resume an interrupted run exactly.
//
//   - caption: the decoder's LM loss on "prompt + caption" with the prompt
//     tokens left out of the loss (BLIP: decoder_targets[:, :prompt_length]
//     = -100), label smoothing 0.1.
//   - vqa: the question encoded with the image (text_encoder cross-attending
//     to the ViT), every answer of the question decoded from [DEC] against
//     the question states, each answer's summed token loss (label
//     smoothing 0.1) weighted by its annotator share, summed and divided by
//     the batch size (blip_vqa.py).
//   - retrieval: BLIP_Retrieval.forward (blip_retrieval.py) with
//     train_retrieval.py's loss ITC + ITM: momentum encoders and feature
//     queues, ITC targets from image ids (captions of one image are
//     positives, in the batch and in the queue) mixed with the momentum
//     model's distribution (alpha, ramped over the first epoch), and ITM
//     with hard negatives that are never captions of the same image.
package finetune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"blip/blip"
	"blip/gpu"
	"blip/optim"
)

// Tasks are the fine-tuning tasks.
var Tasks = []string{"caption", "vqa", "retrieval"}

// Config is a fine-tuning run's settings, named as BLIP's
// configs/caption_coco.yaml and vqa.yaml. Relative paths are relative to
// the file.
type Config struct {
	Task string `json:"task"`
	// Init is the HF folder to start from: a captioning model for caption,
	// a VQA model for vqa, a retrieval (BlipForImageTextRetrieval) model
	// for retrieval (a pretraining run's hf/ exports are all three).
	Init string `json:"init"`

	BatchSize int `json:"batch_size"`
	Epochs    int `json:"max_epoch"`
	// StepsPerEpoch > 0 caps each epoch at that many steps.
	StepsPerEpoch int `json:"steps_per_epoch,omitempty"`

	InitLR      float64 `json:"init_lr"`
	MinLR       float64 `json:"min_lr"`
	WeightDecay float64 `json:"weight_decay"`
	MaxGradNorm float64 `json:"max_grad_norm"`
	// WarmupSteps > 0 ramps the rate linearly from 0 over the first steps
	// (BLIP's fine-tuning has none; short runs from scratch-trained models
	// may want one).
	WarmupSteps int `json:"warmup_steps"`
	// Precision is the storage of the weights the step's products read:
	// "fp32" (default), or "fp16"/"bf16" for mixed precision (fp32 master
	// weights, optimiser and gradients; graph.Params.SetStorage).
	Precision string `json:"precision,omitempty"`
	// LossScale is the initial loss scale of an fp16 run, which scales
	// its loss dynamically as torch.cuda.amp.GradScaler (optim.Scaler):
	// a power of two in [1, 2^126]; 0 gives GradScaler's 2^16. bf16 and
	// fp32 runs do not scale their loss.
	LossScale      float64 `json:"loss_scale,omitempty"`
	LabelSmoothing float64 `json:"label_smoothing"`
	// Dropout is the text transformers' hidden dropout (BERT's 0.1).
	Dropout float64 `json:"dropout"`

	// Prompt starts every caption (caption task), left out of the loss.
	Prompt    string `json:"prompt"`
	MaxWords  int    `json:"max_words"`  // pre_caption / pre_question word limit
	MaxLength int    `json:"max_length"` // caption or question tokens, [CLS]/[DEC] and [SEP] included
	// AnswerLength is the token length of an answer ([DEC] and [SEP]
	// included); MaxAnswers caps the distinct answers of a question.
	AnswerLength int `json:"answer_length"`
	MaxAnswers   int `json:"max_answers"`

	// Retrieval (retrieval_coco.yaml and blip_retrieval.py): the size of
	// the momentum feature and image-id queues, the distillation weight
	// (ramped from 0 over the first epoch) and the momentum of the EMA
	// encoders.
	QueueSize int     `json:"queue_size,omitempty"`
	Alpha     float64 `json:"alpha,omitempty"`
	Momentum  float64 `json:"momentum,omitempty"`
	// InitTemp is the ITC temperature to start from: HF retrieval folders
	// do not keep BLIP's learned one. It is learned, clamped to
	// [0.001, 0.5], unless FixedTemp > 0 holds it at that value.
	InitTemp  float64 `json:"init_temp,omitempty"`
	FixedTemp float64 `json:"fixed_temp,omitempty"`
	// ITMToken is the first token of the ITM rows: "cls" keeps [CLS], as
	// transformers' BlipForImageTextRetrieval and this code base's ITM
	// scoring (blip itm, retrieval reranking) feed it, so the fine-tuned
	// head scores what inference asks; "enc" puts [ENC] first, as BLIP's
	// own training and evaluation do.
	ITMToken string `json:"itm_token,omitempty"`

	// Augment turns on BLIP's training transform (RandomResizedCrop from
	// min_scale, horizontal flip with probability hflip, RandAugment);
	// off, images are resized as at inference.
	Augment     bool    `json:"augment"`
	MinScale    float64 `json:"min_scale"`
	HFlip       float64 `json:"hflip"`
	RandAugment bool    `json:"rand_augment"`

	Seed    uint64 `json:"seed"`
	Workers int    `json:"workers"`
	// CheckpointEvery writes a checkpoint every that many steps (and at
	// each epoch's end and on interruption); 0: epochs only.
	CheckpointEvery int `json:"checkpoint_every"`

	dir string
}

// Defaults returns BLIP's recipe for task: caption_coco.yaml (lr 1e-5,
// 5 epochs, prompt "a picture of "), vqa.yaml (lr 2e-5, 10 epochs) or
// retrieval_coco.yaml (lr 1e-5, 6 epochs, batch 32, queue 57600, alpha
// 0.4, momentum 0.995, captions of at most 30 words in 35 tokens),
// weight decay 0.05, cosine decay to 0, label smoothing 0.1 (captioning
// and VQA).
func Defaults(task string) Config {
	c := Config{
		Task: task, BatchSize: 32, Epochs: 5, InitLR: 1e-5, MinLR: 0, WeightDecay: 0.05,
		LabelSmoothing: 0.1, Dropout: 0.1, Prompt: "a picture of ", MaxWords: 30, MaxLength: 40,
		AnswerLength: 10, MaxAnswers: 10,
		Augment: true, MinScale: 0.5, HFlip: 0.5, RandAugment: true,
		Seed: 42, Workers: 4,
	}
	switch task {
	case "vqa":
		c.Epochs, c.InitLR, c.Prompt, c.MaxLength, c.BatchSize = 10, 2e-5, "", 35, 16
	case "retrieval":
		c.Epochs, c.Prompt, c.MaxLength, c.LabelSmoothing = 6, "", 35, 0
		c.QueueSize, c.Alpha, c.Momentum, c.InitTemp, c.ITMToken = 57600, 0.4, 0.995, 0.07, "cls"
	}
	return c
}

// Load reads a config file over Defaults of its task and validates it.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("finetune config: %w", err)
	}
	return Parse(data, path)
}

// Parse parses config bytes (path names the file in errors and anchors
// relative paths) over Defaults of the task they name, and validates them.
func Parse(data []byte, path string) (*Config, error) {
	c, err := Decode(data, path)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("finetune config %s: %w", path, err)
	}
	return c, nil
}

// Decode is Parse without the validation, for callers that complete the
// config (command-line flags) before validating it.
func Decode(data []byte, path string) (*Config, error) {
	var head struct {
		Task string `json:"task"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("finetune config %s: %w", path, err)
	}
	c := Defaults(head.Task)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("finetune config %s: %w", path, err)
	}
	c.dir = filepath.Dir(path)
	if c.Init != "" && !filepath.IsAbs(c.Init) {
		c.Init = filepath.Join(c.dir, c.Init)
	}
	return &c, nil
}

// Validate reports the first impossible setting, by its name.
func (c *Config) Validate() error {
	bad := func(name string, v any, want string) error { return fmt.Errorf("%s = %v: %s", name, v, want) }
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	prec, _ := blip.ParsePrecision(c.Precision) // checked below
	switch {
	case c.Task != "caption" && c.Task != "vqa" && c.Task != "retrieval":
		return bad("task", fmt.Sprintf("%q", c.Task), fmt.Sprintf("must be one of %v", Tasks))
	case c.Init == "":
		return bad("init", `""`, "the HF folder to fine-tune is required")
	case c.BatchSize < 1:
		return bad("batch_size", c.BatchSize, "must be >= 1")
	case c.Epochs < 1:
		return bad("max_epoch", c.Epochs, "must be >= 1")
	case c.StepsPerEpoch < 0:
		return bad("steps_per_epoch", c.StepsPerEpoch, "must be >= 0")
	case !(c.InitLR > 0) || !finite(c.InitLR):
		return bad("init_lr", c.InitLR, "must be > 0")
	case !(c.MinLR >= 0 && c.MinLR <= c.InitLR):
		return bad("min_lr", c.MinLR, "must be in [0, init_lr]")
	case !(c.WeightDecay >= 0) || !finite(c.WeightDecay):
		return bad("weight_decay", c.WeightDecay, "must be >= 0")
	case !(c.MaxGradNorm >= 0) || !finite(c.MaxGradNorm):
		return bad("max_grad_norm", c.MaxGradNorm, "must be >= 0 (0: no clipping)")
	case c.WarmupSteps < 0:
		return bad("warmup_steps", c.WarmupSteps, "must be >= 0")
	case !(c.LabelSmoothing >= 0 && c.LabelSmoothing < 1):
		return bad("label_smoothing", c.LabelSmoothing, "must be in [0, 1)")
	case !blip.IsPrecision(c.Precision):
		return bad("precision", fmt.Sprintf("%q", c.Precision), "must be fp32, fp16 or bf16")
	case c.LossScale != 0 && prec != gpu.F16:
		return bad("loss_scale", c.LossScale, `applies to precision "fp16" only`)
	case c.LossScale != 0 && !optim.IsLossScale(c.LossScale):
		return bad("loss_scale", c.LossScale, "must be 0 (2^16) or a power of two in [1, 2^126]")
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return bad("dropout", c.Dropout, "must be in [0, 1)")
	case c.MaxWords < 1:
		return bad("max_words", c.MaxWords, "must be >= 1")
	case c.MaxLength < 3:
		return bad("max_length", c.MaxLength, "must be >= 3 ([CLS], a word, [SEP])")
	case c.Task == "vqa" && c.AnswerLength < 3:
		return bad("answer_length", c.AnswerLength, "must be >= 3 ([DEC], a word, [SEP])")
	case c.Task == "vqa" && c.MaxAnswers < 1:
		return bad("max_answers", c.MaxAnswers, "must be >= 1")
	case c.Task == "retrieval" && c.QueueSize < c.BatchSize:
		return bad("queue_size", c.QueueSize, fmt.Sprintf("must be >= batch_size %d", c.BatchSize))
	case c.Task == "retrieval" && !(c.Alpha >= 0 && c.Alpha <= 1):
		return bad("alpha", c.Alpha, "must be in [0, 1]")
	case c.Task == "retrieval" && !(c.Momentum >= 0 && c.Momentum <= 1):
		return bad("momentum", c.Momentum, "must be in [0, 1]")
	case c.Task == "retrieval" && !(c.InitTemp >= 0.001 && c.InitTemp <= 0.5):
		return bad("init_temp", c.InitTemp, "must be in [0.001, 0.5]")
	case c.Task == "retrieval" && c.FixedTemp != 0 && !(c.FixedTemp >= 0.001 && c.FixedTemp <= 0.5):
		return bad("fixed_temp", c.FixedTemp, "must be 0 (learned) or in [0.001, 0.5]")
	case c.Task == "retrieval" && c.ITMToken != "cls" && c.ITMToken != "enc":
		return bad("itm_token", fmt.Sprintf("%q", c.ITMToken), `must be "cls" or "enc"`)
	case !(c.MinScale > 0 && c.MinScale <= 1):
		return bad("min_scale", c.MinScale, "must be in (0, 1]")
	case !(c.HFlip >= 0 && c.HFlip <= 1):
		return bad("hflip", c.HFlip, "must be in [0, 1]")
	case c.Workers < 1:
		return bad("workers", c.Workers, "must be >= 1")
	case c.CheckpointEvery < 0:
		return bad("checkpoint_every", c.CheckpointEvery, "must be >= 0")
	}
	return nil
}

// scalerConfig is the loss scaling of an fp16 run: GradScaler's, starting
// at loss_scale when set.
func (c *Config) scalerConfig() optim.ScalerConfig { return optim.ScalerFrom(c.LossScale) }
