package eval

import (
	"fmt"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"blip/blip"
	"blip/data/dataset"
)

// RetrievalOptions configure Retrieval. Zero values take the defaults.
type RetrievalOptions struct {
	// K is the number of ITC candidates re-ranked with ITM per query
	// (BLIP's k_test: 256 for COCO, 128 for Flickr30k); clamped to the
	// gallery size. Default 256.
	K int
	// Batch is the number of images per vision-encoder batch (and whose
	// states one ITM batch can gather from). Default 16.
	Batch int
	// TextBatch is the number of texts per text-encoder batch. Default 128.
	TextBatch int
	// ITMRows is the number of pairs per ITM batch. Default 64.
	ITMRows int
	// MaxTextTokens truncates texts (ids, [CLS] and [SEP] included), as
	// BLIP's max_length=35. Default 35.
	MaxTextTokens int
	// CacheStatesBytes bounds the host memory used to keep every image's
	// vision states from the ITC pass to the ITM pass; above it the ITM
	// pass runs the vision encoder again (once per image). Default 4 GiB;
	// negative never caches.
	CacheStatesBytes int64
	// ITMEncToken starts ITM texts with [ENC] instead of [CLS], as
	// salesforce/BLIP's ITM does (transformers keeps [CLS],
	// transformers#22732); ITC always uses [CLS].
	ITMEncToken bool
	Progress    Progress
}

func (o *RetrievalOptions) defaults() {
	if o.K <= 0 {
		o.K = 256
	}
	if o.Batch <= 0 {
		o.Batch = 16
	}
	if o.TextBatch <= 0 {
		o.TextBatch = 128
	}
	if o.ITMRows <= 0 {
		o.ITMRows = 64
	}
	if o.MaxTextTokens <= 0 {
		o.MaxTextTokens = 35
	}
	if o.CacheStatesBytes == 0 {
		o.CacheStatesBytes = 4 << 30
	}
}

// RetrievalResult is the outcome of Retrieval.
type RetrievalResult struct {
	// Recall is itm_eval of the final scores (ITM match logit + ITC cosine
	// on each query's top-k, FillScore elsewhere); ITCRecall that of the
	// ITC cosines alone.
	Recall, ITCRecall Recall
	// K is the number of candidates re-ranked per query.
	K int
	// I2T[i] are image i's top-k texts, T2I[j] text j's top-k images, by
	// final score (descending).
	I2T, T2I []TopK
	// RankI2T[i] is the rank of image i's first correct text, RankT2I[j]
	// that of text j's image (0-based).
	RankI2T, RankT2I []int
	// Sims are the ITC cosines, images x texts row-major.
	Sims []float32
	// Pairs is the number of distinct pairs scored with ITM; VisionPasses
	// the images run through the vision encoder (ITC and ITM passes).
	Pairs, VisionPasses int
	// Timings of the stages.
	TextTime, ImageTime, ITMTime time.Duration
}

// pairSlot is one pair to score with ITM for an image: the text and where
// its score goes (an index into the I2T and/or T2I score arrays, -1: none).
type pairSlot struct {
	text       int32
	i2t, t2i   int32
	i2tS, t2iS bool
}

// Retrieval evaluates image-text retrieval as BLIP's evaluation()
// (train_retrieval.py): ITC cosines of every image with every text, then
// for every image its k most similar texts and for every text its k most
// similar images are scored with ITM; a pair's score is its ITM match
// logit plus its cosine, the rest FillScore, and itm_eval gives the
// recalls. Texts are tokenised [CLS] text [SEP] as the HF processor does
// (ITM also keeps [CLS] first, as transformers, unless ITMEncToken). Each image goes through
// the vision encoder once for ITC and, unless its states were kept
// (CacheStatesBytes), once more for all its ITM pairs.
func Retrieval(env *Env, data *dataset.Retrieval, opt RetrievalOptions) (*RetrievalResult, error) {
	opt.defaults()
	m, be := env.Model, env.Backend
	nImg, nTxt := len(data.Entries), len(data.Texts)
	if nImg == 0 || nTxt == 0 {
		return nil, fmt.Errorf("eval: retrieval: no images or texts")
	}
	res := &RetrievalResult{}
	var err error

	// Texts: tokens and ITC embeddings.
	t0 := time.Now()
	ids := make([][]int32, nTxt)
	textLen := 0
	for j, s := range data.Texts {
		ids[j] = env.Encode(s, opt.MaxTextTokens)
		textLen = max(textLen, len(ids[j]))
	}
	d := m.Config.ImageTextHiddenSize
	txtEmb := make([]float32, 0, nTxt*d)
	for start := 0; start < nTxt; start += opt.TextBatch {
		end := min(start+opt.TextBatch, nTxt)
		e, err := m.TextEmbeddings(be, ids[start:end])
		if err != nil {
			return nil, fmt.Errorf("eval: retrieval: texts %d..%d: %w", start, end-1, err)
		}
		txtEmb = append(txtEmb, e...)
		opt.Progress.report("texts", end, nTxt)
	}
	res.TextTime = time.Since(t0)

	// Images: states (kept when they fit) and ITC embeddings.
	t0 = time.Now()
	v := &m.Config.VisionConfig
	per := v.NumPositions() * v.HiddenSize
	var cache []float32
	if opt.CacheStatesBytes > 0 && int64(nImg)*int64(per)*4 <= opt.CacheStatesBytes {
		cache = make([]float32, 0, nImg*per)
	}
	imgEmb := make([]float32, 0, nImg*d)
	paths := make([]string, nImg)
	for i, e := range data.Entries {
		paths[i] = e.Path
	}
	for start := 0; start < nImg; start += opt.Batch {
		end := min(start+opt.Batch, nImg)
		pixels, err := env.LoadPixels(paths[start:end])
		if err != nil {
			return nil, err
		}
		states, emb, err := m.ImageStatesEmbeddings(be, pixels, end-start)
		if err != nil {
			return nil, fmt.Errorf("eval: retrieval: images %d..%d: %w", start, end-1, err)
		}
		res.VisionPasses += end - start
		imgEmb = append(imgEmb, emb...)
		if cache != nil {
			cache = append(cache, states...)
		}
		opt.Progress.report("images", end, nImg)
	}
	res.ImageTime = time.Since(t0)

	// ITC similarities and top-k both ways.
	res.Sims = make([]float32, nImg*nTxt)
	blas32.Gemm(blas.NoTrans, blas.Trans, 1,
		blas32.General{Rows: nImg, Cols: d, Stride: d, Data: imgEmb},
		blas32.General{Rows: nTxt, Cols: d, Stride: d, Data: txtEmb},
		0, blas32.General{Rows: nImg, Cols: nTxt, Stride: nTxt, Data: res.Sims})
	sims := res.Sims
	kI2T, kT2I := min(opt.K, nTxt), min(opt.K, nImg)
	res.K = max(kI2T, kT2I)
	res.I2T, res.T2I = make([]TopK, nImg), make([]TopK, nTxt)
	itcI2T, itcT2I := make([]TopK, nImg), make([]TopK, nTxt)
	for i := range nImg {
		itcI2T[i] = SelectTopK(sims[i*nTxt:(i+1)*nTxt], kI2T)
	}
	col := make([]float32, nImg)
	for j := range nTxt {
		for i := range nImg {
			col[i] = sims[i*nTxt+j]
		}
		itcT2I[j] = SelectTopK(col, kT2I)
	}
	correctT2I := make([][]int, nTxt)
	for j, i := range data.Txt2Img {
		correctT2I[j] = []int{i}
	}
	if res.ITCRecall, err = denseRecall(sims, nImg, nTxt, data.Img2Txt, data.Txt2Img); err != nil {
		return nil, err
	}

	// The ITM pairs of every image, each distinct pair once.
	i2tScore := make([]float32, nImg*kI2T)
	t2iScore := make([]float32, nTxt*kT2I)
	needs := make([][]pairSlot, nImg)
	for i, t := range itcI2T {
		needs[i] = make([]pairSlot, 0, 2*len(t.Index))
		for r, j := range t.Index {
			needs[i] = append(needs[i], pairSlot{text: int32(j), i2t: int32(i*kI2T + r), i2tS: true})
		}
	}
	pos := make([]map[int32]int, nImg)
	for j, t := range itcT2I {
		for r, i := range t.Index {
			if pos[i] == nil {
				pos[i] = make(map[int32]int, len(needs[i]))
				for p, s := range needs[i] {
					pos[i][s.text] = p
				}
			}
			slot := int32(j*kT2I + r)
			if p, ok := pos[i][int32(j)]; ok {
				needs[i][p].t2i, needs[i][p].t2iS = slot, true
				continue
			}
			pos[i][int32(j)] = len(needs[i])
			needs[i] = append(needs[i], pairSlot{text: int32(j), t2i: slot, t2iS: true})
		}
	}
	pos = nil
	for _, n := range needs {
		res.Pairs += len(n)
	}

	// ITM, image batch by image batch.
	itmIDs := ids
	if opt.ITMEncToken {
		enc := env.Tok.Enc
		if enc < 0 || enc >= m.Config.TextConfig.VocabSize {
			return nil, fmt.Errorf("eval: retrieval: [ENC] id %d is outside the model's vocabulary of %d", enc, m.Config.TextConfig.VocabSize)
		}
		itmIDs = make([][]int32, nTxt)
		for j, s := range ids {
			itmIDs[j] = append([]int32{int32(enc)}, s[1:]...)
		}
	}
	t0 = time.Now()
	scorer, err := m.NewITMScorer(be, opt.Batch, opt.ITMRows, textLen)
	if err != nil {
		return nil, fmt.Errorf("eval: retrieval: %w", err)
	}
	defer scorer.Close()
	done := 0
	for start := 0; start < nImg; start += opt.Batch {
		end := min(start+opt.Batch, nImg)
		var states []float32
		if cache != nil {
			states = cache[start*per : end*per]
		} else {
			// The states go from the vision pass to the scorer on the device.
			pixels, err := env.LoadPixels(paths[start:end])
			if err != nil {
				return nil, err
			}
			if err := scorer.LoadPixels(pixels, 0, end-start); err != nil {
				return nil, fmt.Errorf("eval: retrieval: images %d..%d: %w", start, end-1, err)
			}
			res.VisionPasses += end - start
		}
		var pairs []blip.ITMPair
		var slots []pairSlot
		var imgOf []int
		for i := start; i < end; i++ {
			for _, s := range needs[i] {
				pairs = append(pairs, blip.ITMPair{Image: i - start, Text: itmIDs[s.text]})
				slots, imgOf = append(slots, s), append(imgOf, i)
			}
		}
		var logits [][2]float32
		if states != nil {
			logits, err = scorer.Score(states, end-start, pairs)
		} else {
			logits, err = scorer.ScorePairs(pairs)
		}
		if err != nil {
			return nil, fmt.Errorf("eval: retrieval: ITM of images %d..%d: %w", start, end-1, err)
		}
		for p, s := range slots {
			score := logits[p][1] + sims[imgOf[p]*nTxt+int(s.text)]
			if s.i2tS {
				i2tScore[s.i2t] = score
			}
			if s.t2iS {
				t2iScore[s.t2i] = score
			}
		}
		done += len(pairs)
		opt.Progress.report("itm", done, res.Pairs)
	}
	res.ITMTime = time.Since(t0)
	for i, t := range itcI2T {
		res.I2T[i] = SortTopK(TopK{Index: t.Index, Score: i2tScore[i*kI2T : i*kI2T+len(t.Index)]})
	}
	for j, t := range itcT2I {
		res.T2I[j] = SortTopK(TopK{Index: t.Index, Score: t2iScore[j*kT2I : j*kT2I+len(t.Index)]})
	}
	if err := recallOf(res.I2T, res.T2I, nImg, nTxt, data.Img2Txt, correctT2I, &res.Recall, &res.RankI2T, &res.RankT2I); err != nil {
		return nil, err
	}
	return res, nil
}

// recallOf ranks both directions of sparse scores and computes itm_eval.
func recallOf(i2t, t2i []TopK, nImg, nTxt int, img2txt, txt2img [][]int, out *Recall, ranksI2T, ranksT2I *[]int) error {
	ri, err := TopKRanks(i2t, nTxt, img2txt)
	if err != nil {
		return fmt.Errorf("eval: retrieval: image to text: %w", err)
	}
	rt, err := TopKRanks(t2i, nImg, txt2img)
	if err != nil {
		return fmt.Errorf("eval: retrieval: text to image: %w", err)
	}
	*out = RecallFromRanks(ri, rt)
	if ranksI2T != nil {
		*ranksI2T, *ranksT2I = ri, rt
	}
	return nil
}

// denseRecall is itm_eval of a dense images x texts score matrix (the
// text-to-image scores being its transpose).
func denseRecall(sims []float32, nImg, nTxt int, img2txt [][]int, txt2img []int) (Recall, error) {
	ri := make([]int, nImg)
	for i := range nImg {
		r, err := Rank(sims[i*nTxt:(i+1)*nTxt], img2txt[i])
		if err != nil {
			return Recall{}, fmt.Errorf("eval: retrieval: image %d: %w", i, err)
		}
		ri[i] = r
	}
	rt := make([]int, nTxt)
	col := make([]float32, nImg)
	for j := range nTxt {
		for i := range nImg {
			col[i] = sims[i*nTxt+j]
		}
		r, err := Rank(col, []int{txt2img[j]})
		if err != nil {
			return Recall{}, fmt.Errorf("eval: retrieval: text %d: %w", j, err)
		}
		rt[j] = r
	}
	return RecallFromRanks(ri, rt), nil
}

// RetrievalHit is one retrieved item of a RetrievalRecord.
type RetrievalHit struct {
	Index int     `json:"index"`
	Score float32 `json:"score"`
	// Cosine is the pair's ITC cosine (Score minus it is the ITM logit).
	Cosine float32 `json:"itc_cosine"`
}

// RetrievalRecord is one query's line of results.jsonl: "i2t" queries are
// images (Image, their texts' indices in Correct), "t2i" queries texts.
type RetrievalRecord struct {
	Direction string         `json:"direction"`
	Query     int            `json:"query"`
	Image     string         `json:"image,omitempty"`
	Text      string         `json:"text,omitempty"`
	Correct   []int          `json:"correct"`
	Rank      int            `json:"rank"`
	Top       []RetrievalHit `json:"top"`
}

// RetrievalRecords returns one record per image (i2t) then per text (t2i),
// each with its best n retrieved items.
func RetrievalRecords(data *dataset.Retrieval, res *RetrievalResult, n int) []RetrievalRecord {
	nTxt := len(data.Texts)
	out := make([]RetrievalRecord, 0, len(res.I2T)+len(res.T2I))
	hits := func(t TopK, cos func(j int) float32) []RetrievalHit {
		h := make([]RetrievalHit, 0, min(n, len(t.Index)))
		for r := range min(n, len(t.Index)) {
			h = append(h, RetrievalHit{Index: t.Index[r], Score: t.Score[r], Cosine: cos(t.Index[r])})
		}
		return h
	}
	for i, t := range res.I2T {
		out = append(out, RetrievalRecord{Direction: "i2t", Query: i, Image: data.Entries[i].Image, Correct: data.Img2Txt[i],
			Rank: res.RankI2T[i], Top: hits(t, func(j int) float32 { return res.Sims[i*nTxt+j] })})
	}
	for j, t := range res.T2I {
		out = append(out, RetrievalRecord{Direction: "t2i", Query: j, Text: data.Texts[j], Correct: []int{data.Txt2Img[j]},
			Rank: res.RankT2I[j], Top: hits(t, func(i int) float32 { return res.Sims[i*nTxt+j] })})
	}
	return out
}
