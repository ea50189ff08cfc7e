package generate

import (
	"errors"
	"fmt"
	"math"
)

// EarlyStopping is transformers' early_stopping for beam search.
type EarlyStopping int

const (
	// EarlyStopHeuristic is early_stopping=False (the default): a batch item
	// stops when its best running beam, scored at the current length, can
	// no longer beat the worst of num_beams finished hypotheses.
	EarlyStopHeuristic EarlyStopping = iota
	// EarlyStopTrue is early_stopping=True: a batch item stops as soon as it
	// has num_beams finished hypotheses.
	EarlyStopTrue
	// EarlyStopNever is early_stopping="never": like the heuristic, but with
	// a positive length penalty the running beam is scored at max_length,
	// the canonical beam search stopping rule.
	EarlyStopNever
)

// String gives the Python spelling.
func (e EarlyStopping) String() string {
	switch e {
	case EarlyStopHeuristic:
		return "False"
	case EarlyStopTrue:
		return "True"
	case EarlyStopNever:
		return "never"
	}
	return fmt.Sprintf("EarlyStopping(%d)", int(e))
}

// Config is the subset of transformers' GenerationConfig that this package
// implements. Start from DefaultConfig: zero is a meaningful value for
// several fields (LengthPenalty, TopP), so the zero Config is not the HF
// default.
type Config struct {
	// MaxLength is the total length of a returned sequence, prompt included
	// (HF max_length, default 20). MaxNewTokens > 0 overrides it with
	// prompt length + MaxNewTokens, as HF does.
	MaxLength    int
	MaxNewTokens int
	// MinLength counts the prompt too: EOS is masked while the sequence is
	// shorter. MinNewTokens > 0 overrides it with prompt length +
	// MinNewTokens (HF applies both processors; the effect is the same).
	MinLength    int
	MinNewTokens int

	// NumBeams > 1 selects beam search.
	NumBeams      int
	LengthPenalty float64
	EarlyStopping EarlyStopping
	// NumReturnSequences per input item: at most NumBeams for beam search,
	// any number for sampling, 1 for greedy (HF refuses more).
	NumReturnSequences int

	// DoSample selects multinomial sampling (only with NumBeams == 1).
	DoSample bool
	// Temperature, TopK and TopP are the sampling warpers, applied only when
	// DoSample is set (HF ignores them otherwise). TopK 0 and TopP 1 disable
	// them; HF's default TopK is 50.
	Temperature float64
	TopK        int
	TopP        float64
	// Seed fixes the sampling random stream. Each expanded row has its own
	// stream, so a row's draw does not depend on when other rows finish.
	Seed uint64

	// RepetitionPenalty != 1 divides positive and multiplies negative
	// scores of every token already in the row (prompt included).
	RepetitionPenalty float64

	// BosTokenID is what BLIPPrompts puts first; EosTokenID ends a row
	// (BLIP: sep_token_id); PadTokenID fills finished rows. A negative
	// EosTokenID means no EOS.
	BosTokenID int32
	EosTokenID int32
	PadTokenID int32
}

// DefaultConfig returns transformers' GenerationConfig defaults (greedy,
// max_length 20) with no special tokens set.
func DefaultConfig() Config {
	return Config{
		MaxLength:          20,
		NumBeams:           1,
		LengthPenalty:      1,
		NumReturnSequences: 1,
		Temperature:        1,
		TopK:               50,
		TopP:               1,
		RepetitionPenalty:  1,
		EosTokenID:         -1,
	}
}

// BLIPConfig returns DefaultConfig with BLIP's special tokens: generation
// starts from bos ([DEC]), stops at sep ([SEP]) and pads with pad ([PAD]),
// as BlipForConditionalGeneration.generate passes them.
func BLIPConfig(bos, sep, pad int32) Config {
	c := DefaultConfig()
	c.BosTokenID, c.EosTokenID, c.PadTokenID = bos, sep, pad
	return c
}

// lengths resolves max/min length for a prompt of promptLen tokens.
func (c *Config) lengths(promptLen int) (maxLen, minLen int) {
	maxLen = c.MaxLength
	if c.MaxNewTokens > 0 {
		maxLen = promptLen + c.MaxNewTokens
	}
	minLen = c.MinLength
	if c.MinNewTokens > 0 {
		minLen = promptLen + c.MinNewTokens
	}
	return maxLen, minLen
}

func (c *Config) validate() error {
	switch {
	case c.NumBeams < 1:
		return errors.New("generate: NumBeams must be >= 1 (start from DefaultConfig)")
	case c.NumReturnSequences < 1:
		return errors.New("generate: NumReturnSequences must be >= 1")
	case c.MaxLength < 1 && c.MaxNewTokens < 1:
		return errors.New("generate: MaxLength or MaxNewTokens must be set")
	case c.MaxNewTokens < 0 || c.MinLength < 0 || c.MinNewTokens < 0:
		return errors.New("generate: negative length")
	case c.EarlyStopping < EarlyStopHeuristic || c.EarlyStopping > EarlyStopNever:
		return fmt.Errorf("generate: bad EarlyStopping %d", int(c.EarlyStopping))
	case c.RepetitionPenalty <= 0 || math.IsNaN(c.RepetitionPenalty):
		return fmt.Errorf("generate: RepetitionPenalty must be > 0, got %v", c.RepetitionPenalty)
	case math.IsNaN(c.LengthPenalty) || math.IsInf(c.LengthPenalty, 0):
		return fmt.Errorf("generate: bad LengthPenalty %v", c.LengthPenalty)
	}
	if c.NumBeams > 1 {
		if c.DoSample {
			return errors.New("generate: beam sampling (DoSample with NumBeams > 1) is not implemented")
		}
		if c.NumReturnSequences > c.NumBeams {
			return fmt.Errorf("generate: NumReturnSequences %d > NumBeams %d", c.NumReturnSequences, c.NumBeams)
		}
		return nil
	}
	if !c.DoSample {
		if c.NumReturnSequences > 1 {
			return errors.New("generate: greedy search cannot return more than one sequence per input")
		}
		return nil
	}
	switch {
	case !(c.Temperature > 0) || math.IsInf(c.Temperature, 0):
		return fmt.Errorf("generate: Temperature must be > 0 when sampling, got %v", c.Temperature)
	case c.TopK < 0:
		return fmt.Errorf("generate: TopK must be >= 0, got %d", c.TopK)
	case !(c.TopP > 0 && c.TopP <= 1):
		return fmt.Errorf("generate: TopP must be in (0, 1], got %v", c.TopP)
	}
	return nil
}
