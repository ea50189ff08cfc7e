package demo

import (
	"blip/blip"
	"blip/data/tokenizer"
	"blip/gpu"
)

// rerankK is how many ITC candidates per query ITM re-scores (BLIP: 256
// on COCO, 128 on Flickr; the demo's galleries are a few hundred).
const rerankK = 16

// rerank re-scores, as BLIP's evaluation does, each text's top rerankK
// images and each image's top rerankK texts by ITC cosine with the ITM
// head: score = ITM match logit + cosine; every other pair gets -100 (plus
// its cosine, so that ties keep the ITC order). It returns the re-ranked
// text->image and image->text matrices, both indexed [text][image]. The
// texts go to the encoder with [ENC] first, as pretraining's ITM saw them.
func rerank(o *Options, be gpu.Backend, dir string, pixels []float32, n int, texts []string, sim [][]float32) (t2i, i2t [][]float32, err error) {
	m, err := blip.LoadDir(dir, be)
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	per := len(pixels) / n
	var states []float32
	for s := 0; s < n; s += evalBatch {
		b := min(evalBatch, n-s)
		st, err := m.ImageStates(be, pixels[s*per:(s+b)*per], b)
		if err != nil {
			return nil, nil, err
		}
		states = append(states, st...)
	}
	ids := make([][]int32, len(texts))
	for t, text := range texts {
		enc := tok.EncodeWith(tokenizer.PreCaption(text, 30), tokenizer.Options{MaxLength: o.textLength()})
		row := make([]int32, len(enc.IDs))
		for j, id := range enc.IDs {
			row[j] = int32(id)
		}
		row[0] = int32(tok.Enc)
		ids[t] = row
	}
	// The pairs both directions keep, each scored once.
	type key struct{ t, i int }
	index := map[key]int{}
	var pairs []blip.ITMPair
	add := func(t, i int) {
		if _, ok := index[key{t, i}]; !ok {
			index[key{t, i}] = len(pairs)
			pairs = append(pairs, blip.ITMPair{Image: i, Text: ids[t]})
		}
	}
	k := min(rerankK, n)
	for t := range texts {
		for _, i := range topK(sim[t], k) {
			add(t, i)
		}
	}
	kt := min(rerankK, len(texts))
	col := make([]float32, len(texts))
	for i := range n {
		for t := range texts {
			col[t] = sim[t][i]
		}
		for _, t := range topK(col, kt) {
			add(t, i)
		}
	}
	sc, err := m.NewITMScorer(be, n, 64, o.textLength())
	if err != nil {
		return nil, nil, err
	}
	defer sc.Close()
	logits, err := sc.Score(states, n, pairs)
	if err != nil {
		return nil, nil, err
	}
	fill := func() [][]float32 {
		out := make([][]float32, len(texts))
		for t := range out {
			out[t] = make([]float32, n)
			for i := range out[t] {
				out[t][i] = -100 + sim[t][i]
			}
		}
		return out
	}
	t2i, i2t = fill(), fill()
	score := func(t, i int) float32 { return logits[index[key{t, i}]][1] + sim[t][i] }
	for t := range texts {
		for _, i := range topK(sim[t], k) {
			t2i[t][i] = score(t, i)
		}
	}
	for i := range n {
		for t := range texts {
			col[t] = sim[t][i]
		}
		for _, t := range topK(col, kt) {
			i2t[t][i] = score(t, i)
		}
	}
	return t2i, i2t, nil
}
