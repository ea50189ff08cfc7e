package serve

import (
	"fmt"

	"blip/blip"
	"blip/data/preprocess"
	"blip/data/tokenizer"
	"blip/gpu"
)

// Loaded is one model with what turns requests into its inputs.
type Loaded struct {
	Dir   string
	Model *blip.Model
	Tok   *tokenizer.Tokenizer
	Proc  preprocess.Processor
}

// Models are the models a server answers with; any may be nil, and the
// endpoints that need a missing one answer 501.
type Models struct {
	Caption   *Loaded // BlipForConditionalGeneration: /v1/caption
	Retrieval *Loaded // BlipForImageTextRetrieval: /v1/itm, /v1/embed, /v1/classify, /v1/search
	VQA       *Loaded // BlipForQuestionAnswering: /v1/vqa
}

// Close frees every model.
func (ms *Models) Close() {
	for _, l := range []*Loaded{ms.Caption, ms.Retrieval, ms.VQA} {
		if l != nil && l.Model != nil {
			l.Model.Close()
		}
	}
}

// LoadModel loads an HF folder onto be with its tokenizer and image
// processor. want (KindUnknown: any loadable kind) is checked before the
// weights are read; errors name the folder.
func LoadModel(dir string, be gpu.Backend, want blip.ModelKind) (*Loaded, error) {
	f, err := blip.OpenFolder(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if want != blip.KindUnknown && f.Kind != want {
		return nil, fmt.Errorf("serve: %s holds a %v model, want a %v", dir, f.Kind, want)
	}
	switch f.Kind {
	case blip.KindCaptioning, blip.KindRetrieval, blip.KindQA:
	default:
		return nil, fmt.Errorf("serve: %s holds a %v model, which blip serve cannot use (want %v, %v or %v)",
			dir, f.Kind, blip.KindCaptioning, blip.KindRetrieval, blip.KindQA)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("serve: %s: %w", dir, err)
	}
	proc, err := preprocess.FromConfigDir(dir)
	if err != nil {
		return nil, fmt.Errorf("serve: %s: %w", dir, err)
	}
	m, err := blip.Load(f, be)
	if err != nil {
		return nil, err
	}
	return &Loaded{Dir: dir, Model: m, Tok: tok, Proc: proc}, nil
}

// ModelDirs name the folders LoadModels reads: Any is a folder of any
// supported kind that fills its own slot (blip serve --model); the others
// must hold their kind.
type ModelDirs struct {
	Any, Caption, Retrieval, VQA string
}

// LoadModels loads every named folder. A folder that fails to load stops
// with an error naming it; no folder at all is an error too.
func LoadModels(be gpu.Backend, d ModelDirs) (*Models, error) {
	ms := &Models{}
	slot := func(k blip.ModelKind) **Loaded {
		switch k {
		case blip.KindCaptioning:
			return &ms.Caption
		case blip.KindRetrieval:
			return &ms.Retrieval
		case blip.KindQA:
			return &ms.VQA
		}
		return nil
	}
	for _, x := range []struct {
		dir  string
		kind blip.ModelKind
	}{{d.Caption, blip.KindCaptioning}, {d.Retrieval, blip.KindRetrieval}, {d.VQA, blip.KindQA}, {d.Any, blip.KindUnknown}} {
		if x.dir == "" {
			continue
		}
		l, err := LoadModel(x.dir, be, x.kind)
		if err != nil {
			ms.Close()
			return nil, err
		}
		p := slot(l.Model.Kind)
		if *p != nil {
			l.Model.Close()
			ms.Close()
			return nil, fmt.Errorf("serve: %s and %s are both %v models; give one", (*p).Dir, x.dir, l.Model.Kind)
		}
		*p = l
	}
	if ms.Caption == nil && ms.Retrieval == nil && ms.VQA == nil {
		return nil, fmt.Errorf("serve: no model given (--model, --retrieval or --vqa)")
	}
	return ms, nil
}

// encode tokenises [CLS] text [SEP].
func encode(tok *tokenizer.Tokenizer, s string) []int32 {
	ids := tok.Encode(s)
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// decode detokenises a generated sequence, special tokens skipped.
func decode(tok *tokenizer.Tokenizer, seq []int32) string {
	ints := make([]int, len(seq))
	for i, id := range seq {
		ints[i] = int(id)
	}
	return tok.Decode(ints, true)
}
