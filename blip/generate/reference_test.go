package generate

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
)

// reference is testdata/reference.json, written by testdata/reference.py: a
// random-table fake decoder and the beam search and greedy outputs that a
// torch float32 rendering of transformers' _beam_search and _sample gives
// for it.
type reference struct {
	Items, Vocab, Positions int
	Eos, Pad, Bos           int32
	EosBias                 float64 `json:"eos_bias"`
	Table                   []float32
	Cases                   []struct {
		Prompts            [][]int32
		NumBeams           int     `json:"num_beams"`
		MaxLength          int     `json:"max_length"`
		MinLength          int     `json:"min_length"`
		LengthPenalty      float64 `json:"length_penalty"`
		EarlyStopping      any     `json:"early_stopping"`
		RepetitionPenalty  float64 `json:"repetition_penalty"`
		NumReturnSequences int     `json:"num_return_sequences"`
		IDs                [][]int32
		Scores             []float64
		GreedyIDs          [][]int32 `json:"greedy_ids"`
	}
}

func (r *reference) model() *funcModel {
	v, p := r.Vocab, r.Positions
	return &funcModel{vocab: v, f: func(item int, seq []int32) []float32 {
		cur := len(seq)
		off := ((item*v+int(seq[cur-1])%v)*p + cur%p) * v
		l := slices.Clone(r.Table[off : off+v])
		l[r.Eos] += float32(r.EosBias * float64(cur))
		return l
	}}
}

// TestTorchReference checks greedy and beam search against transformers on
// table models, twice: reading the logits back, and on a stepper that picks
// greedy tokens and ranks beam candidates itself (Picker, Ranker), which
// must give the same sequences and scores.
func TestTorchReference(t *testing.T) {
	for _, onStepper := range []bool{false, true} {
		t.Run(map[bool]string{false: "logits", true: "stepper"}[onStepper], func(t *testing.T) { torchReference(t, onStepper) })
	}
}

func torchReference(t *testing.T, onStepper bool) {
	raw, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	for i, c := range ref.Cases {
		cfg := BLIPConfig(ref.Bos, ref.Eos, ref.Pad)
		cfg.MaxLength, cfg.MinLength = c.MaxLength, c.MinLength
		cfg.LengthPenalty, cfg.RepetitionPenalty = c.LengthPenalty, c.RepetitionPenalty
		switch c.EarlyStopping {
		case true:
			cfg.EarlyStopping = EarlyStopTrue
		case "never":
			cfg.EarlyStopping = EarlyStopNever
		}
		model := func() Stepper {
			if onStepper {
				return &stepperModel{chunkPickModel: &chunkPickModel{pickModel: &pickModel{funcModel: ref.model()}}}
			}
			return ref.model()
		}
		greedy, err := Generate(model(), c.Prompts, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(greedy.Sequences, c.GreedyIDs, slices.Equal) {
			t.Errorf("case %d greedy:\n got %v\nwant %v", i, greedy.Sequences, c.GreedyIDs)
		}
		cfg.NumBeams, cfg.NumReturnSequences = c.NumBeams, c.NumReturnSequences
		bm := model()
		beam, err := Generate(bm, c.Prompts, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(beam.Sequences, c.IDs, slices.Equal) {
			t.Errorf("case %d beams %d lp %v early %v min %d max %d rep %v:\n got %v\nwant %v", i, c.NumBeams,
				c.LengthPenalty, c.EarlyStopping, c.MinLength, c.MaxLength, c.RepetitionPenalty, beam.Sequences, c.IDs)
			continue
		}
		for j, s := range c.Scores {
			if d := math.Abs(float64(beam.Scores[j]) - s); d > 1e-5*max(1, math.Abs(s)) {
				t.Errorf("case %d score %d: got %v want %v", i, j, beam.Scores[j], s)
			}
		}
		if sm, ok := bm.(*stepperModel); ok && (sm.ranks == 0) != (c.RepetitionPenalty != 1) {
			t.Errorf("case %d (repetition penalty %v): %d beam steps ranked on the stepper", i, c.RepetitionPenalty, sm.ranks)
		}
	}
}
