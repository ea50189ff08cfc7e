package generate

import "math/rand/v2"

// tableModel is a fake decoder whose logits are a fixed random table indexed
// by (item, last token, position), with EOS (id 1) made likelier as the row
// grows so that rows end at different lengths.
func tableModel(items, vocab int, seed uint64) *funcModel {
	const positions = 32
	rng := rand.New(rand.NewPCG(seed, 7))
	table := make([]float32, items*vocab*positions*vocab)
	for i := range table {
		table[i] = float32(rng.NormFloat64() * 2)
	}
	return &funcModel{vocab: vocab, f: func(item int, p []int32) []float32 {
		pos := len(p) % positions
		last := int(p[len(p)-1]) % vocab
		off := ((item*vocab+last)*positions + pos) * vocab
		l := append([]float32(nil), table[off:off+vocab]...)
		l[1] += float32(len(p)) * 0.3
		return l
	}}
}
