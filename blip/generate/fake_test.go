package generate

import (
	"fmt"
	"math"
)

// funcModel is a fake decoder: the logits of a row are any function of the
// row's input item and its tokens so far. It checks the Stepper contract
// (row counts, prompt lengths, reorder indices) as a real model would.
type funcModel struct {
	vocab  int
	f      func(item int, prefix []int32) []float32
	rows   [][]int32
	items  []int
	steps  int // Step calls
	maxRow int // most rows seen in one call
}

func (m *funcModel) logits() []float32 {
	out := make([]float32, 0, len(m.rows)*m.vocab)
	for i, r := range m.rows {
		l := m.f(m.items[i], r)
		if len(l) != m.vocab {
			panic(fmt.Sprintf("fake model gave %d logits", len(l)))
		}
		out = append(out, l...)
	}
	m.maxRow = max(m.maxRow, len(m.rows))
	return out
}

func (m *funcModel) Start(prompts [][]int32, copies int) ([]float32, error) {
	if copies < 1 || len(prompts)%copies != 0 {
		return nil, fmt.Errorf("bad copies %d for %d rows", copies, len(prompts))
	}
	m.rows, m.items, m.steps = nil, nil, 0
	for i, p := range prompts {
		if len(p) != len(prompts[0]) || len(p) == 0 {
			return nil, fmt.Errorf("ragged prompts")
		}
		m.rows = append(m.rows, append([]int32(nil), p...))
		m.items = append(m.items, i/copies)
	}
	return m.logits(), nil
}

func (m *funcModel) Step(tokens []int32) ([]float32, error) {
	if len(tokens) != len(m.rows) {
		return nil, fmt.Errorf("step with %d tokens for %d rows", len(tokens), len(m.rows))
	}
	for i, t := range tokens {
		m.rows[i] = append(m.rows[i], t)
	}
	m.steps++
	return m.logits(), nil
}

func (m *funcModel) Reorder(src []int) error {
	rows := make([][]int32, len(src))
	items := make([]int, len(src))
	for i, s := range src {
		if s < 0 || s >= len(m.rows) {
			return fmt.Errorf("reorder index %d of %d rows", s, len(m.rows))
		}
		rows[i] = append([]int32(nil), m.rows[s]...)
		items[i] = m.items[s]
	}
	m.rows, m.items = rows, items
	return nil
}

// treeModel builds a funcModel from next-token probabilities keyed by the
// prefix written as a string of token ids ("5 2 2"); prefixes not listed
// get def. Logits are log-probabilities, so log_softmax returns them.
func treeModel(vocab int, tree map[string][]float64, def []float64) *funcModel {
	return &funcModel{vocab: vocab, f: func(_ int, prefix []int32) []float32 {
		p, ok := tree[key(prefix)]
		if !ok {
			p = def
		}
		l := make([]float32, vocab)
		for i, v := range p {
			l[i] = float32(math.Log(v))
		}
		return l
	}}
}

func key(prefix []int32) string {
	s := ""
	for i, t := range prefix {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprint(t)
	}
	return s
}
