// Package pretrain runs BLIP pretraining (the reference pretrain.py): the
// data pipeline into batches, the step (ITC + ITM + LM forward and
// backward, AdamW, momentum update, queue update) on a gpu.Backend,
// schedules, metrics, and checkpoints from which a run resumes to the same
// result as if it had never stopped.
package pretrain

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

// Config is a pretraining run's settings: a JSON file whose names follow
// BLIP's configs/pretrain.yaml. Relative paths are relative to the file.
type Config struct {
	// Model is the HF config.json body of the model (vision_config,
	// text_config, image_text_hidden_size); ModelConfig names a file
	// holding it instead.
	Model       json.RawMessage `json:"model,omitempty"`
	ModelConfig string          `json:"model_config,omitempty"`
	// Vocab is the WordPiece vocab.txt ([DEC] and [ENC] included).
	Vocab string `json:"vocab"`
	// Init, when set, is an HF BLIP folder whose weights start the run
	// (tensors it lacks start fresh); otherwise every weight is drawn
	// fresh (BERT/ViT initialisation, seeded).
	Init string `json:"init,omitempty"`
	// InitStd is the standard deviation of freshly drawn matrices and
	// embeddings (BERT's and BLIP's ViT's 0.02).
	InitStd float64 `json:"init_std"`
	// InitVisionPositionStd > 0 draws the ViT's position embeddings with
	// that spread instead (see blip.RandomInit.VisionPositionStd).
	InitVisionPositionStd float64 `json:"init_vision_position_std,omitempty"`

	BatchSize int `json:"batch_size"`
	Epochs    int `json:"max_epoch"`
	// StepsPerEpoch > 0 ends each epoch after that many steps (a cap for
	// demos and tests); 0 runs through the data.
	StepsPerEpoch int `json:"steps_per_epoch,omitempty"`

	QueueSize int     `json:"queue_size"`
	Alpha     float64 `json:"alpha"`
	// AlphaRampEpochs is how many epochs alpha ramps up over (BLIP: 2).
	AlphaRampEpochs float64 `json:"alpha_ramp_epochs"`
	Momentum        float64 `json:"momentum"`
	// FixedTemp > 0 holds the ITC temperature at that value (frozen, no
	// gradient) instead of learning it from 0.07 as BLIP does: short runs
	// from scratch, where AdamW moves the scalar by about lr per step.
	FixedTemp float64 `json:"fixed_temp,omitempty"`
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
	Dropout   float64 `json:"dropout"`
	MaxWords  int     `json:"max_words"`  // pre_caption's word limit
	MaxLength int     `json:"max_length"` // tokens, [CLS] and [SEP] included

	InitLR         float64 `json:"init_lr"`
	WarmupLR       float64 `json:"warmup_lr"`
	MinLR          float64 `json:"min_lr"`
	WarmupSteps    int     `json:"warmup_steps"`
	LRDecayRate    float64 `json:"lr_decay_rate"`
	WeightDecay    float64 `json:"weight_decay"`
	ExemptBiasNorm bool    `json:"exempt_bias_norm"`
	MaxGradNorm    float64 `json:"max_grad_norm"`

	MinScale    float64 `json:"min_scale"` // RandomResizedCrop scale lower bound
	RandAugment bool    `json:"rand_augment"`

	Seed    uint64 `json:"seed"`
	Workers int    `json:"workers"`
	// CheckpointEvery writes a checkpoint every that many steps (and at
	// the end of each epoch and on interruption); 0: epochs only.
	CheckpointEvery int `json:"checkpoint_every"`
	LogEvery        int `json:"log_every"`

	// dir resolves relative paths; model is the parsed Model.
	dir   string
	model *blip.BlipConfig
}

// Defaults returns configs/pretrain.yaml's values (the released config:
// decay 0.9, the paper's 0.85 is a setting) for a batch of 32.
func Defaults() Config {
	return Config{
		BatchSize: 32, Epochs: 20,
		QueueSize: 57600, Alpha: 0.4, AlphaRampEpochs: 2, Momentum: 0.995,
		LabelSmoothing: 0.1, Dropout: 0.1, MaxWords: 30, MaxLength: 30,
		InitLR: 3e-4, WarmupLR: 1e-6, MinLR: 1e-6, WarmupSteps: 3000, LRDecayRate: 0.9,
		WeightDecay: 0.05,
		MinScale:    0.2, RandAugment: true,
		InitStd: 0.02, Seed: 42, Workers: 4, CheckpointEvery: 1000, LogEvery: 10,
	}
}

// Load reads a config file over Defaults and validates it.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pretrain config: %w", err)
	}
	return Parse(data, path)
}

// Parse parses config bytes (path names the file in errors and anchors
// relative paths) over Defaults and validates them.
func Parse(data []byte, path string) (*Config, error) {
	c := Defaults()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("pretrain config %s: %w", path, err)
	}
	c.dir = filepath.Dir(path)
	if err := c.resolve(path); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("pretrain config %s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// resolve reads the model config and makes paths absolute.
func (c *Config) resolve(path string) error {
	c.Vocab, c.Init = c.abs(c.Vocab), c.abs(c.Init)
	if c.ModelConfig != "" {
		if len(c.Model) > 0 {
			return fmt.Errorf("pretrain config %s: give model or model_config, not both", path)
		}
		c.ModelConfig = c.abs(c.ModelConfig)
		data, err := os.ReadFile(c.ModelConfig)
		if err != nil {
			return fmt.Errorf("pretrain config %s: model_config: %w", path, err)
		}
		c.Model = data
	}
	if len(c.Model) == 0 {
		return fmt.Errorf("pretrain config %s: model (an HF BLIP config.json object) or model_config is required", path)
	}
	m, err := blip.ParseConfig(c.Model, path+": model")
	if err != nil {
		return err
	}
	c.model = m
	return nil
}

// ModelConfig returns the parsed model config.
func (c *Config) BlipConfig() *blip.BlipConfig { return c.model }

// Validate refuses impossible values before any work starts, naming the
// setting.
func (c *Config) Validate() error {
	bad := func(name string, v any, want string) error {
		return fmt.Errorf("%s = %v: %s", name, v, want)
	}
	pos := func(x float64) bool { return x > 0 && !math.IsInf(x, 0) }
	prec, _ := blip.ParsePrecision(c.Precision) // checked below
	switch {
	case c.BatchSize < 2:
		return bad("batch_size", c.BatchSize, "must be >= 2 (ITM draws a negative from the rest of the batch)")
	case c.Epochs < 1:
		return bad("max_epoch", c.Epochs, "must be >= 1")
	case c.StepsPerEpoch < 0:
		return bad("steps_per_epoch", c.StepsPerEpoch, "must be >= 0")
	case c.QueueSize < c.BatchSize:
		return bad("queue_size", c.QueueSize, fmt.Sprintf("must be >= batch_size (%d)", c.BatchSize))
	case !(c.Alpha >= 0 && c.Alpha <= 1):
		return bad("alpha", c.Alpha, "must be in [0, 1]")
	case !(c.AlphaRampEpochs >= 0) || math.IsInf(c.AlphaRampEpochs, 0):
		return bad("alpha_ramp_epochs", c.AlphaRampEpochs, "must be >= 0")
	case !(c.Momentum >= 0 && c.Momentum < 1):
		return bad("momentum", c.Momentum, "must be in [0, 1)")
	case c.FixedTemp != 0 && !(c.FixedTemp >= 0.001 && c.FixedTemp <= 0.5):
		return bad("fixed_temp", c.FixedTemp, "must be 0 (learned) or in [0.001, 0.5]")
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
	case !pos(c.InitLR):
		return bad("init_lr", c.InitLR, "must be > 0")
	case !(c.WarmupLR >= 0) || math.IsInf(c.WarmupLR, 0):
		return bad("warmup_lr", c.WarmupLR, "must be >= 0")
	case !(c.MinLR >= 0) || math.IsInf(c.MinLR, 0):
		return bad("min_lr", c.MinLR, "must be >= 0")
	case c.WarmupSteps < 0:
		return bad("warmup_steps", c.WarmupSteps, "must be >= 0")
	case !(c.LRDecayRate > 0 && c.LRDecayRate <= 1):
		return bad("lr_decay_rate", c.LRDecayRate, "must be in (0, 1]")
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return bad("weight_decay", c.WeightDecay, "must be >= 0")
	case !(c.MaxGradNorm >= 0) || math.IsInf(c.MaxGradNorm, 0):
		return bad("max_grad_norm", c.MaxGradNorm, "must be >= 0 (0: no clipping)")
	case !(c.MinScale > 0 && c.MinScale <= 1):
		return bad("min_scale", c.MinScale, "must be in (0, 1]")
	case !(c.InitStd > 0 && c.InitStd <= 1):
		return bad("init_std", c.InitStd, "must be in (0, 1]")
	case !(c.InitVisionPositionStd >= 0 && c.InitVisionPositionStd <= 10):
		return bad("init_vision_position_std", c.InitVisionPositionStd, "must be in [0, 10] (0: init_std)")
	case c.Workers < 1:
		return bad("workers", c.Workers, "must be >= 1")
	case c.CheckpointEvery < 0:
		return bad("checkpoint_every", c.CheckpointEvery, "must be >= 0")
	case c.LogEvery < 1:
		return bad("log_every", c.LogEvery, "must be >= 1")
	case c.Vocab == "":
		return bad("vocab", `""`, "the vocab.txt path is required")
	}
	if m := c.model; m != nil {
		if c.MaxLength > m.TextConfig.MaxPositionEmbeddings {
			return bad("max_length", c.MaxLength, fmt.Sprintf("exceeds the model's max_position_embeddings %d", m.TextConfig.MaxPositionEmbeddings))
		}
		if !m.TextConfig.IsDecoder {
			return bad("model.text_config.is_decoder", false, "must be true: the pretraining encoder cross-attends to the image")
		}
		if m.ImageTextHiddenSize < 1 {
			return bad("model.image_text_hidden_size", m.ImageTextHiddenSize, "must be >= 1")
		}
	}
	return nil
}

// scalerConfig is the loss scaling of an fp16 run: GradScaler's, starting
// at loss_scale when set.
func (c *Config) scalerConfig() optim.ScalerConfig { return optim.ScalerFrom(c.LossScale) }
