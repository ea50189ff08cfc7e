package pretrain

import (
	"fmt"

	"blip/blip"
)

// initSource reads what an HF folder holds and draws the rest fresh: a
// run initialised from, say, a retrieval checkpoint gets its decoder's
// self-attention and LM head new.
type initSource struct {
	ck    *blip.Checkpoint
	fresh blip.RandomInit
}

func (s initSource) Has(name string) bool { return s.ck.Has(name) }

func (s initSource) Require(name string, shape ...int) ([]float32, error) {
	if s.ck.Has(name) {
		return s.ck.Require(name, shape...)
	}
	return s.fresh.Require(name, shape...)
}

func (s initSource) Ignore(names ...string) { s.ck.Ignore(names...) }

// InitSource returns where a new run's weights come from: cfg.Init's HF
// folder over fresh weights, or fresh weights alone. Call the returned
// function once the model is built.
func InitSource(cfg *Config) (blip.WeightSource, func(), error) {
	fresh := blip.RandomInit{Seed: cfg.Seed, Std: cfg.InitStd, VisionPositionStd: cfg.InitVisionPositionStd}
	if cfg.Init == "" {
		return fresh, func() {}, nil
	}
	f, err := blip.OpenFolder(cfg.Init)
	if err != nil {
		return nil, nil, fmt.Errorf("pretrain: init: %w", err)
	}
	return initSource{ck: f.Weights, fresh: fresh}, func() { f.Close() }, nil
}
