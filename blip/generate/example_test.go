package generate_test

import (
	"fmt"

	"blip/blip/generate"
)

// constModel is a stand-in decoder: it prefers token 4, and [SEP] once the
// row has 4 tokens.
type constModel struct{ rows [][]int32 }

func (m *constModel) logits() []float32 {
	out := make([]float32, 0, len(m.rows)*6)
	for _, r := range m.rows {
		l := make([]float32, 6)
		l[4] = 1
		if len(r) >= 4 {
			l[3] = 2
		}
		out = append(out, l...)
	}
	return out
}

func (m *constModel) Start(prompts [][]int32, copies int) ([]float32, error) {
	m.rows = prompts
	return m.logits(), nil
}

func (m *constModel) Step(tokens []int32) ([]float32, error) {
	for i, t := range tokens {
		m.rows[i] = append(m.rows[i], t)
	}
	return m.logits(), nil
}

func (m *constModel) Reorder(src []int) error {
	rows := make([][]int32, len(src))
	for i, s := range src {
		rows[i] = append([]int32(nil), m.rows[s]...)
	}
	m.rows = rows
	return nil
}

func Example() {
	// BLIP's [DEC]=5, [SEP]=3, [PAD]=0; two images, no text prompt.
	// min_length 5 keeps [SEP] away until the row has 5 tokens.
	cfg := generate.BLIPConfig(5, 3, 0)
	cfg.NumBeams, cfg.MaxLength, cfg.MinLength = 3, 20, 5
	prompts, _ := generate.BLIPPrompts(nil, 2, cfg.BosTokenID)
	out, err := generate.Generate(&constModel{}, prompts, cfg)
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Sequences, out.Lengths)
	// Output: [[5 4 4 4 4 3] [5 4 4 4 4 3]] [6 6]
}
