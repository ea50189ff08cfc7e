package generate

import "fmt"

// Stepper runs an autoregressive decoder one token at a time with a KV cache.
//
// Rows: Start receives len(prompts) rows; row r conditions on input item
// (image) r/copies, the layout of torch's repeat_interleave that transformers
// uses to expand inputs for beam search and num_return_sequences. Every later
// call works on the current rows, in order.
type Stepper interface {
	// Start clears any cache, feeds the prompts (all of the same length, at
	// least one token) and returns the next-token logits after each prompt's
	// last token, (rows, vocab) row-major.
	Start(prompts [][]int32, copies int) ([]float32, error)
	// Step appends tokens[i] to row i (len(tokens) == current rows) and
	// returns the next-token logits, (rows, vocab) row-major.
	Step(tokens []int32) ([]float32, error)
	// Reorder makes old row src[i] the new row i. src may repeat rows (beam
	// search duplicates a beam) and may be shorter than the current row count
	// (finished rows are dropped); the input item a row conditions on moves
	// with it.
	Reorder(src []int) error
}

// Picker is a Stepper that can take greedy decisions itself, where its
// logits are (on the device): greedy search then reads back one token and
// one log-probability per row instead of every row's logits, and does no
// per-token work over the vocabulary on the host.
type Picker interface {
	Stepper
	// StartPick and StepPick are Start and Step returning, instead of the
	// logits, each row's greedy token and its log-probability: the argmax
	// of the row's logits (the lowest index among equals) with token ban
	// excluded when ban >= 0 (its logit taken as -Inf, as the min-length
	// processor does), and the log-softmax of that same row at it.
	StartPick(prompts [][]int32, copies int, ban int32) (tokens []int32, logp []float32, err error)
	StepPick(tokens []int32, ban int32) ([]int32, []float32, error)
}

// ChunkPicker is a Picker that runs several greedy steps in one call,
// feeding every row the token it picked at the step before, so that the
// host waits once per chunk rather than once per token.
type ChunkPicker interface {
	Picker
	// StepPicks is StepPick(tokens, bans[0]) followed by len(bans)-1 more
	// steps, step i banning bans[i] and appending to each row its pick of
	// step i-1. It returns every step's picks and log-probabilities,
	// (len(bans), rows).
	StepPicks(tokens []int32, bans []int32) ([][]int32, [][]float32, error)
}

// Ranker is a Stepper that can rank each row's tokens itself, where its
// logits are: beam search then reads back each row's few best tokens and
// its log-sum-exp instead of the row's logits.
type Ranker interface {
	Stepper
	// StartTop and StepTop are Start and Step returning, instead of the
	// logits, each row's k largest logits (fewer if the vocabulary is
	// smaller) in descending order, lower token first among equals.
	StartTop(prompts [][]int32, copies, k int) (*Top, error)
	StepTop(tokens []int32, k int) (*Top, error)
}

// Top is a Ranker's answer for a number of rows.
type Top struct {
	K      int       // tokens per row
	Tokens []int32   // (rows, K)
	Logits []float32 // (rows, K), descending: Logits[r*K] is the row's maximum
	// LSE is log(sum(exp(logits - max))) over each whole row: its
	// log-softmax at a token is (logit - max) - LSE.
	LSE []float32
}

// check verifies that t answers rows rows.
func (t *Top) check(rows int) error {
	if t == nil || t.K < 1 || len(t.Tokens) != rows*t.K || len(t.Logits) != rows*t.K || len(t.LSE) != rows {
		k, nt, nl, ns := 0, 0, 0, 0
		if t != nil {
			k, nt, nl, ns = t.K, len(t.Tokens), len(t.Logits), len(t.LSE)
		}
		return fmt.Errorf("generate: stepper ranked %d tokens, %d logits and %d sums at %d per row for %d rows", nt, nl, ns, k, rows)
	}
	return nil
}
