package blip

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Files of an HF BLIP folder besides the weights.
const (
	ConfigName = "config.json"
	VocabName  = "vocab.txt"
)

// Folder is an opened HF BLIP checkpoint folder (what save_pretrained
// writes, plus the tokenizer's vocab.txt): a validated config and weights
// checked against it.
type Folder struct {
	Dir     string
	Config  *BlipConfig
	Kind    ModelKind
	Weights *Checkpoint
	// VocabPath is the folder's vocab.txt, or "" when it has none.
	VocabPath string
}

// OpenFolder opens an HF BLIP folder: it reads config.json, opens the
// weights (safetensors preferred, as transformers does), decides the model
// class from "architectures" (or, failing that, from the weight names), ties
// the LM head to the word embeddings when the file omits it, and checks that
// every parameter of that class is present with the shape the config
// implies. Extra tensors are tolerated: Weights.Unused lists them once the
// model has been built.
func OpenFolder(dir string) (*Folder, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("blip: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("blip: %s is not a folder (want an HF model folder with %s and weights)", dir, ConfigName)
	}
	cfgPath := filepath.Join(dir, ConfigName)
	if _, err := os.Stat(cfgPath); err != nil {
		return nil, fmt.Errorf("blip: %s: not an HF model folder: no %s", dir, ConfigName)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	w, err := OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	f := &Folder{Dir: dir, Config: cfg, Weights: w}
	if err := f.prepare(); err != nil {
		w.Close()
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, VocabName)); err == nil {
		f.VocabPath = filepath.Join(dir, VocabName)
	}
	return f, nil
}

// Close closes the weights.
func (f *Folder) Close() error { return f.Weights.Close() }

// prepare decides the kind, ties weights and checks shapes.
func (f *Folder) prepare() error {
	w, cfg := f.Weights, f.Config
	fromNames := KindFromNames(w.Names())
	f.Kind = cfg.Kind
	if f.Kind == KindUnknown {
		f.Kind = fromNames
	}
	if f.Kind == KindUnknown {
		return fmt.Errorf("blip: %s: not a BLIP model: %s names no BLIP architecture and the weights have none of the BLIP module names (vision_model, text_decoder, text_encoder, ...)",
			f.Dir, ConfigName)
	}
	if err := TieWeights(w, cfg, f.Kind); err != nil {
		return err
	}
	specs, err := ExpectedTensors(cfg, f.Kind)
	if err != nil {
		return fmt.Errorf("blip: %s: %v", f.Dir, err)
	}
	if err := w.Check(specs); err != nil {
		if fromNames != KindUnknown && fromNames != f.Kind {
			return fmt.Errorf("%w\n(%s says %v but the weights look like %v)", err, ConfigName, f.Kind, fromNames)
		}
		return err
	}
	return nil
}

// TieWeights applies the weight sharing transformers restores on load: the
// LM head's decoder weight reads the word embeddings when the file omits it
// (save_pretrained drops tied copies) and the config ties them; the head's
// bias, saved by old versions under both "bias" and "decoder.bias", is read
// from whichever exists. Buffers (position_ids) and tied duplicates are
// excluded from Unused.
func TieWeights(w *Checkpoint, cfg *BlipConfig, kind ModelKind) error {
	if kind == KindCaptioning || kind == KindQA {
		if !w.Has(DecoderWeightName) && cfg.TextConfig.TieWordEmbeddings && w.Has(DecoderEmbedName) {
			if err := w.Alias(DecoderWeightName, DecoderEmbedName); err != nil {
				return err
			}
		}
		switch {
		case w.Has(decoderBiasName) && w.Has(decoderBiasTieName):
			w.Ignore(decoderBiasTieName)
		case w.Has(decoderBiasTieName):
			if err := w.Alias(decoderBiasName, decoderBiasTieName); err != nil {
				return err
			}
		}
	}
	var buffers []string
	for _, n := range w.Names() {
		if strings.HasSuffix(n, ".position_ids") {
			buffers = append(buffers, n)
		}
	}
	w.Ignore(buffers...)
	return nil
}
