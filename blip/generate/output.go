package generate

// Output is what Generate returns: one row per input item and returned
// sequence, row i*NumReturnSequences+j for item i.
type Output struct {
	// Sequences are the token ids with the prompt first (so they start with
	// [DEC] for BLIP), padded with PadTokenID to the longest row, the tensor
	// transformers returns.
	Sequences [][]int32
	// Lengths are the unpadded lengths: prompt plus generated tokens, the EOS
	// included when one was generated.
	Lengths []int
	// Scores: for beam search HF's sequences_scores (sum of the processed
	// token log-probabilities divided by generated_length**length_penalty);
	// for greedy and sampling the sum, over generated tokens before EOS
	// padding, of log_softmax of the processed scores at the chosen token
	// (what compute_transition_scores with normalize_logits gives, summed).
	Scores []float32
}

// pad fills Sequences to a common length and records Lengths.
func (o *Output) pad(padID int32) {
	longest := 0
	o.Lengths = make([]int, len(o.Sequences))
	for i, s := range o.Sequences {
		o.Lengths[i] = len(s)
		longest = max(longest, len(s))
	}
	for i, s := range o.Sequences {
		for len(s) < longest {
			s = append(s, padID)
		}
		o.Sequences[i] = s
	}
}
