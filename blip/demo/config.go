// Package demo runs blip's end-to-end demonstration on the synthetic shapes
// world (data/shapes): it generates a world, pretrains a small BLIP from
// scratch with ITC + ITM + LM (blip/pretrain's Trainer: the step, AdamW,
// momentum encoders and queues of the pretraining run), exports the HF
// folders, fine-tunes the VQA export on the train questions (blip/finetune),
// then captions, retrieves (ITC top-k re-ranked by ITM) and answers
// questions on held-out test images and scores the results with
// data/shapes' metrics next to their chance levels. It
// writes metrics.json, metrics.jsonl (the loss per step), loss.png and an
// HTML report.
package demo

import (
	"fmt"
	"io"

	"blip/data/shapes"
)

// Model is the size of the demo model (ViT and text transformer).
type Model struct {
	ImageSize     int `json:"image_size"`
	PatchSize     int `json:"patch_size"`
	VisionLayers  int `json:"vision_layers"`
	VisionWidth   int `json:"vision_width"`
	TextLayers    int `json:"text_layers"`
	TextWidth     int `json:"text_width"`
	Heads         int `json:"heads"`
	EmbedDim      int `json:"embed_dim"` // ITC projection width
	MaxTextLength int `json:"max_text_length"`
}

// Options are a demo run's settings.
type Options struct {
	Out string `json:"-"`
	// World: images of all splits, seed, objects per image (1..MaxObjects).
	N          int     `json:"n"`
	Seed       int64   `json:"seed"`
	MaxObjects int     `json:"max_objects"`
	Noise      float64 `json:"noise"`
	// Shapes and Colors restrict the world (nil: all of them).
	Shapes []shapes.Shape `json:"shapes,omitempty"`
	Colors []shapes.Color `json:"colors,omitempty"`
	Model  Model          `json:"model"`
	// Training.
	Steps       int     `json:"steps"`
	BatchSize   int     `json:"batch_size"`
	LR          float64 `json:"lr"`
	WarmupSteps int     `json:"warmup_steps"`
	QueueSize   int     `json:"queue_size"`
	// InitStd is the spread of the fresh weights (pretrain's init_std).
	InitStd float64 `json:"init_std"`
	// PositionStd is the spread of the ViT's fresh position embeddings
	// (pretrain's init_vision_position_std).
	PositionStd float64 `json:"position_std"`
	// Momentum of the momentum encoders and the distillation weight
	// (BLIP: 0.995 and 0.4). The momentum must stay high even from
	// scratch: the queue holds momentum features of earlier steps, and a
	// fast-moving momentum encoder (0.9 and below) fills it with features
	// inconsistent with the current ones, which drove ITC to collapse
	// (every feature alike, the loss at log(batch + queue)).
	Momentum float64 `json:"momentum"`
	Alpha    float64 `json:"alpha"`
	// Temp > 0 holds the ITC temperature at that value (pretrain's fixed_temp)
	// (0: learnt, as BLIP does). AdamW moves a scalar by about the learning
	// rate per step, so at 1e-3 the temperature (0.07) swings by its own
	// size within ~70 steps and the contrastive loss of a model trained
	// from scratch diverges.
	Temp float64 `json:"temp"`
	// VQASteps > 0 fine-tunes the pretrained VQA export for that many
	// steps on the train questions at VQALR (0: no VQA stage).
	VQASteps int     `json:"vqa_steps"`
	VQALR    float64 `json:"vqa_lr"`
	// Evaluation.
	TestLimit int    `json:"test_limit"` // at most this many test images (0: all)
	Beams     int    `json:"beams"`
	Prompt    string `json:"prompt"`
	// ReportImages is how many test images the HTML report shows.
	ReportImages int `json:"report_images"`

	// Log receives progress lines (nil: discarded).
	Log io.Writer `json:"-"`
}

// Defaults is the full demo: 3000 images of 48 px with one object each
// (every object then lies in one 16 px patch, a cell of the world's 3x3
// layout grid), a ViT of 4 layers x 128 and a text transformer of 2 layers
// x 128, 2000 pretraining steps of 32 with BLIP's momentum encoders
// (0.995) and distillation (alpha 0.4), then 500 steps of VQA
// fine-tuning: about 12 minutes on two CPU cores. Fresh weights are
// drawn with std 0.1, not BERT's 0.02: at 0.02 the [CLS] states of a
// transformer trained from scratch hardly depend on the input (cosine
// 0.9999 between different texts), and ITC makes no progress within the
// budget. The ViT's position embeddings are
// drawn with std 1, comparable to the patch embeddings: at 0.1 the model
// never learned where an object is (position accuracy at chance).
func Defaults() Options {
	return Options{
		N: 3000, Seed: 1, MaxObjects: 1,
		Model: Model{ImageSize: 48, PatchSize: 16, VisionLayers: 4, VisionWidth: 128,
			TextLayers: 2, TextWidth: 128, Heads: 4, EmbedDim: 64},
		Steps: 2000, BatchSize: 32, LR: 1e-3, WarmupSteps: 100, QueueSize: 128, InitStd: 0.1, PositionStd: 1,
		Momentum: 0.995, Alpha: 0.4, Temp: 0.07,
		VQASteps: 500, VQALR: 5e-4,
		Beams: 3, ReportImages: 24,
	}
}

// Quick is a run of about a minute on a smaller world (3 shapes, 3
// colours, one object per image), with a one-layer model.
func Quick() Options {
	o := Defaults()
	o.N, o.MaxObjects = 600, 1
	o.Shapes = []shapes.Shape{shapes.Circle, shapes.Square, shapes.Triangle}
	o.Colors = []shapes.Color{shapes.Red, shapes.Green, shapes.Blue}
	o.Model = Model{ImageSize: 48, PatchSize: 16, VisionLayers: 1, VisionWidth: 64,
		TextLayers: 1, TextWidth: 64, Heads: 2, EmbedDim: 32}
	o.Steps, o.BatchSize, o.LR, o.WarmupSteps, o.QueueSize = 800, 16, 1e-3, 50, 64
	o.VQASteps = 200
	o.TestLimit, o.ReportImages = 60, 12
	return o
}

// textLength is the token length captions are cut to: [CLS], the words,
// [SEP] (MaxTextLength when set, else enough for MaxObjects objects).
func (o *Options) textLength() int {
	if o.Model.MaxTextLength > 0 {
		return o.Model.MaxTextLength
	}
	if o.MaxObjects <= 1 {
		return 16
	}
	return 30
}

func (o *Options) validate() error {
	m := o.Model
	switch {
	case o.Out == "":
		return fmt.Errorf("demo: no output folder")
	case o.N < 10:
		return fmt.Errorf("demo: n = %d: need at least 10 images", o.N)
	case o.Steps < 1:
		return fmt.Errorf("demo: steps = %d: need at least 1", o.Steps)
	case o.BatchSize < 2:
		return fmt.Errorf("demo: batch size %d: need at least 2", o.BatchSize)
	case m.PatchSize < 1 || m.ImageSize%m.PatchSize != 0:
		return fmt.Errorf("demo: image size %d is not a multiple of the patch size %d", m.ImageSize, m.PatchSize)
	case m.Heads < 1 || m.VisionWidth%m.Heads != 0 || m.TextWidth%m.Heads != 0:
		return fmt.Errorf("demo: widths %d/%d are not multiples of %d heads", m.VisionWidth, m.TextWidth, m.Heads)
	case o.Beams < 1:
		return fmt.Errorf("demo: beams = %d: need at least 1", o.Beams)
	}
	return nil
}

// worldConfig is the shapes world of o.
func (o *Options) worldConfig() shapes.Config {
	c := shapes.DefaultConfig()
	c.N, c.Seed, c.Size, c.MaxObjects, c.Noise = o.N, o.Seed, o.Model.ImageSize, o.MaxObjects, o.Noise
	c.Supersample = 2
	c.Shapes, c.Colors = o.Shapes, o.Colors
	return c
}

// modelJSON is the HF config.json body of the demo model for a vocabulary
// of vocab tokens whose last two are [DEC] and [ENC].
func (o *Options) modelJSON(vocab int) string {
	m := o.Model
	return fmt.Sprintf(`{
  "architectures": ["BlipForImageTextRetrieval"], "model_type": "blip", "image_text_hidden_size": %d, "projection_dim": %d,
  "text_config": {"vocab_size": %d, "hidden_size": %d, "encoder_hidden_size": %d, "intermediate_size": %d,
    "num_hidden_layers": %d, "num_attention_heads": %d, "max_position_embeddings": %d, "is_decoder": true,
    "bos_token_id": %d, "pad_token_id": 0, "sep_token_id": 3, "eos_token_id": 3, "layer_norm_eps": 1e-12},
  "vision_config": {"hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": %d, "num_attention_heads": %d,
    "image_size": %d, "patch_size": %d, "layer_norm_eps": 1e-6}
}`, m.EmbedDim, m.EmbedDim, vocab, m.TextWidth, m.VisionWidth, 4*m.TextWidth, m.TextLayers, m.Heads, max(o.textLength(), 32),
		vocab-2, m.VisionWidth, 4*m.VisionWidth, m.VisionLayers, m.Heads, m.ImageSize, m.PatchSize)
}

func (o *Options) logf(format string, args ...any) {
	w := o.Log
	if w == nil {
		return
	}
	fmt.Fprintf(w, format+"\n", args...)
}
