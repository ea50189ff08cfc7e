package generate

import (
	"fmt"
)

// Generate decodes every prompt (one per input item, all the same length)
// with the search that cfg selects: beam search when NumBeams > 1, sampling
// when DoSample, greedy otherwise. The Stepper is started with
// len(prompts)*copies rows, copies being NumBeams for beam search and
// NumReturnSequences otherwise.
func Generate(s Stepper, prompts [][]int32, cfg Config) (*Output, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("generate: no prompts")
	}
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty", i)
		}
		if len(p) != len(prompts[0]) {
			return nil, fmt.Errorf("generate: prompt %d has %d tokens, prompt 0 has %d", i, len(p), len(prompts[0]))
		}
	}
	if maxLen, _ := cfg.lengths(len(prompts[0])); len(prompts[0]) >= maxLen {
		// transformers raises here too (_validate_generated_length).
		return nil, fmt.Errorf("generate: prompt length %d but max length %d; raise MaxLength or set MaxNewTokens", len(prompts[0]), maxLen)
	}
	if cfg.NumBeams > 1 {
		return beamSearch(s, prompts, &cfg)
	}
	return sampleOrGreedy(s, prompts, &cfg)
}

// expand repeats each prompt copies times (torch.repeat_interleave).
func expand(prompts [][]int32, copies int) [][]int32 {
	out := make([][]int32, 0, len(prompts)*copies)
	for _, p := range prompts {
		for range copies {
			out = append(out, append([]int32(nil), p...))
		}
	}
	return out
}

// checkLogits verifies a Stepper result has rows*vocab values and returns vocab.
func checkLogits(logits []float32, rows int) (int, error) {
	if rows == 0 || len(logits) == 0 || len(logits)%rows != 0 {
		return 0, fmt.Errorf("generate: stepper returned %d logits for %d rows", len(logits), rows)
	}
	return len(logits) / rows, nil
}
