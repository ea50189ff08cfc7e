package demo

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"blip/blip"
	"blip/data/metrics"
	"blip/data/shapes"
	"blip/data/tokenizer"
	"blip/gpu"
)

// Ks are the Recall@K reported.
var Ks = []int{1, 5}

// Subset is the evaluation of one group of test images.
type Subset struct {
	Name    string               `json:"name"`
	Images  int                  `json:"images"`
	Texts   int                  `json:"texts"`
	Caption shapes.CaptionReport `json:"caption"`
	// Recall ranks by BLIP's retrieval score: the ITC top-k re-scored with
	// the ITM head (match logit + cosine); RecallITC by the cosine alone.
	Recall    shapes.RecallReport `json:"recall"`
	RecallITC shapes.RecallReport `json:"recall_itc"`
	Chance    shapes.ChanceReport `json:"chance"`
	// BLEU-4 and CIDEr of the generated captions against the image's
	// paraphrases (pycocoevalcap's scorers), and of the constant caption
	// (Chance.ConstantCaption) given to every image.
	BLEU4       float64 `json:"bleu4"`
	CIDEr       float64 `json:"cider"`
	ChanceBLEU4 float64 `json:"chance_bleu4"`
	ChanceCIDEr float64 `json:"chance_cider"`
	// VQA accuracy of the fine-tuned VQA model on the subset's questions,
	// its chance level (random answers of the right type) and the
	// question-only prior (each type's most frequent train answer); nil
	// when the demo skipped VQA.
	VQA       *shapes.VQAReport `json:"vqa,omitempty"`
	ChanceVQA *shapes.VQAReport `json:"chance_vqa,omitempty"`
	PriorVQA  *shapes.VQAReport `json:"prior_vqa,omitempty"`
}

// Example is one test image as the report shows it.
type Example struct {
	Image    string   `json:"image"` // path relative to the output folder
	Truth    string   `json:"truth"` // its first ground-truth caption
	Caption  string   `json:"caption"`
	Accuracy float64  `json:"accuracy"`
	Exact    bool     `json:"exact"`
	TopTexts []Ranked `json:"top_texts"` // image -> text
	// TopImages answer the image's first caption as a query (text -> image).
	TopImages []Ranked `json:"top_images"`
}

// Ranked is one retrieved item.
type Ranked struct {
	Text  string  `json:"text,omitempty"`
	Image string  `json:"image,omitempty"`
	Score float32 `json:"score"`
	Hit   bool    `json:"hit"`
}

// evaluation holds the evaluation's results.
type evaluation struct {
	Subsets  []Subset
	Examples []Example
	Captions []string
}

// evaluate captions and retrieves on the test scenes with the exported
// folders.
func evaluate(o *Options, be gpu.Backend, world string, wc shapes.Config, scenes []shapes.Scene, exports map[string]string, trainQs []shapes.Question) (*evaluation, error) {
	pixels, err := loadPixels(world, scenes, o.Model.ImageSize)
	if err != nil {
		return nil, err
	}
	var answers map[int]string
	if dir, ok := exports["vqa-finetuned"]; ok {
		if answers, err = answerAll(be, dir, pixels, scenes); err != nil {
			return nil, err
		}
	}
	captions, err := captionAll(o, be, exports["captioning"], pixels, len(scenes))
	if err != nil {
		return nil, err
	}
	texts, textImage, descs := shapes.RetrievalTexts(scenes)
	sim, err := similarity(o, be, exports["retrieval"], pixels, len(scenes), texts)
	if err != nil {
		return nil, err
	}
	t2i, i2t, err := rerank(o, be, exports["retrieval"], pixels, len(scenes), texts, sim)
	if err != nil {
		return nil, err
	}
	sims := [3][][]float32{sim, t2i, i2t}
	ev := &evaluation{Captions: captions}
	groups := []struct {
		name string
		keep func(*shapes.Scene) bool
	}{{"all", func(*shapes.Scene) bool { return true }}}
	for k := 1; k <= o.MaxObjects && o.MaxObjects > 1; k++ {
		k := k
		name := fmt.Sprintf("%d objects", k)
		if k == 1 {
			name = "1 object"
		}
		groups = append(groups, struct {
			name string
			keep func(*shapes.Scene) bool
		}{name, func(s *shapes.Scene) bool { return len(s.Objects) == k }})
	}
	for _, g := range groups {
		var idx []int
		for i := range scenes {
			if g.keep(&scenes[i]) {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			continue
		}
		s, err := subset(g.name, wc, scenes, captions, sims, textImage, descs, idx)
		if err != nil {
			return nil, err
		}
		vqaSubset(&s, wc, trainQs, scenes, idx, answers)
		ev.Subsets = append(ev.Subsets, s)
	}
	hits := shapes.RetrievalHits(descs, scenes)
	imgHit := make([]map[int]bool, len(scenes))
	for i := range imgHit {
		imgHit[i] = map[int]bool{}
	}
	for t, hs := range hits {
		for _, i := range hs {
			imgHit[i][t] = true
		}
	}
	firstText := map[int]int{}
	for t, i := range textImage {
		if _, ok := firstText[i]; !ok {
			firstText[i] = t
		}
	}
	for i := 0; i < min(o.ReportImages, len(scenes)); i++ {
		sc := shapes.ScoreCaption(captions[i], &scenes[i])
		ex := Example{Image: "world/" + scenes[i].Image, Truth: scenes[i].Captions[0], Caption: captions[i], Accuracy: sc.Accuracy(), Exact: sc.Exact}
		col := make([]float32, len(texts))
		for t := range texts {
			col[t] = i2t[t][i]
		}
		for _, t := range topK(col, 3) {
			ex.TopTexts = append(ex.TopTexts, Ranked{Text: texts[t], Score: col[t], Hit: imgHit[i][t]})
		}
		q := firstText[i]
		for _, j := range topK(t2i[q], 3) {
			ex.TopImages = append(ex.TopImages, Ranked{Image: "world/" + scenes[j].Image, Score: t2i[q][j], Hit: slices.Contains(hits[q], j)})
		}
		ev.Examples = append(ev.Examples, ex)
	}
	return ev, nil
}

// subset scores the images idx (and their texts, the gallery restricted to
// them) and computes the chance levels of that subset. sims are the ITC
// cosines and the re-ranked text->image and image->text scores.
func subset(name string, wc shapes.Config, scenes []shapes.Scene, captions []string, sims [3][][]float32, textImage []int, descs []shapes.Description, idx []int) (Subset, error) {
	sub := make([]shapes.Scene, len(idx))
	caps := make([]string, len(idx))
	col := map[int]int{}
	for j, i := range idx {
		sub[j], caps[j], col[i] = scenes[i], captions[i], j
	}
	var subSims [3][][]float32
	var subDescs []shapes.Description
	for t, i := range textImage {
		if _, ok := col[i]; !ok {
			continue
		}
		for m, sim := range sims {
			row := make([]float32, len(idx))
			for j, k := range idx {
				row[j] = sim[t][k]
			}
			subSims[m] = append(subSims[m], row)
		}
		subDescs = append(subDescs, descs[t])
	}
	s := Subset{Name: name, Images: len(idx), Texts: len(subDescs)}
	var err error
	if s.Caption, err = shapes.EvaluateCaptions(caps, sub); err != nil {
		return s, err
	}
	hits := shapes.RetrievalHits(subDescs, sub)
	var rec [3]shapes.RecallReport
	for m := range subSims {
		if rec[m], err = shapes.RetrievalRecall(subSims[m], hits, Ks); err != nil {
			return s, err
		}
	}
	s.RecallITC = rec[0]
	s.Recall = shapes.RecallReport{K: rec[1].K, TextToImage: rec[1].TextToImage, ImageToText: rec[2].ImageToText}
	if s.Chance, err = shapes.Chance(wc, sub, Ks); err != nil {
		return s, err
	}
	cands, consts, refs := map[string][]string{}, map[string][]string{}, map[string][]string{}
	constant := metrics.PTBTokenize(s.Chance.ConstantCaption)
	for j := range sub {
		id := strconv.Itoa(j)
		cands[id], consts[id] = []string{metrics.PTBTokenize(caps[j])}, []string{constant}
		for _, c := range sub[j].Captions {
			refs[id] = append(refs[id], metrics.PTBTokenize(c))
		}
	}
	for _, x := range []struct {
		c           map[string][]string
		bleu, cider *float64
	}{{cands, &s.BLEU4, &s.CIDEr}, {consts, &s.ChanceBLEU4, &s.ChanceCIDEr}} {
		b, err := metrics.Bleu(x.c, refs)
		if err != nil {
			return s, err
		}
		if *x.cider, err = metrics.Cider(x.c, refs); err != nil {
			return s, err
		}
		*x.bleu = b[metrics.BleuN-1]
	}
	return s, nil
}

// topK returns the indices of the k largest scores, best first.
func topK(x []float32, k int) []int {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] > x[idx[b]] })
	return idx[:min(k, len(idx))]
}

// evalBatch is the number of images per inference batch.
const evalBatch = 64

// captionAll captions every image with the captioning folder.
func captionAll(o *Options, be gpu.Backend, dir string, pixels []float32, n int) ([]string, error) {
	m, err := blip.LoadDir(dir, be)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	var prompt []int32
	if p := strings.TrimSpace(o.Prompt); p != "" {
		for _, id := range tok.Encode(p) {
			prompt = append(prompt, int32(id))
		}
	}
	cfg := m.CaptionConfig()
	cfg.NumBeams = o.Beams
	// [DEC], the prompt without its [SEP], the caption and [SEP].
	cfg.MaxLength = o.textLength() + max(0, len(prompt)-1)
	cfg.MinLength = 0
	per := len(pixels) / n
	out := make([]string, 0, n)
	for s := 0; s < n; s += evalBatch {
		b := min(evalBatch, n-s)
		var prompts [][]int32
		if prompt != nil {
			for range b {
				prompts = append(prompts, prompt)
			}
		}
		g, err := m.GenerateCaptions(be, pixels[s*per:(s+b)*per], b, prompts, cfg)
		if err != nil {
			return nil, err
		}
		for i := range b {
			ids := g.Sequences[i][:g.Lengths[i]]
			ints := make([]int, len(ids))
			for j, id := range ids {
				ints[j] = int(id)
			}
			out = append(out, tok.Decode(ints, true))
		}
	}
	return out, nil
}

// similarity returns the ITC cosine of every (text, image) pair with the
// retrieval folder: sim[text][image].
func similarity(o *Options, be gpu.Backend, dir string, pixels []float32, n int, texts []string) ([][]float32, error) {
	m, err := blip.LoadDir(dir, be)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	per := len(pixels) / n
	var img []float32
	for s := 0; s < n; s += evalBatch {
		b := min(evalBatch, n-s)
		e, err := m.ImageEmbeddings(be, pixels[s*per:(s+b)*per], b)
		if err != nil {
			return nil, err
		}
		img = append(img, e...)
	}
	var txt []float32
	for s := 0; s < len(texts); s += 4 * evalBatch {
		var ids [][]int32
		for _, t := range texts[s:min(s+4*evalBatch, len(texts))] {
			enc := tok.EncodeWith(tokenizer.PreCaption(t, 30), tokenizer.Options{MaxLength: o.textLength()})
			row := make([]int32, len(enc.IDs))
			for j, id := range enc.IDs {
				row[j] = int32(id)
			}
			ids = append(ids, row)
		}
		e, err := m.TextEmbeddings(be, ids)
		if err != nil {
			return nil, err
		}
		txt = append(txt, e...)
	}
	d := m.Config.ImageTextHiddenSize
	sim := make([][]float32, len(texts))
	for t := range sim {
		sim[t] = make([]float32, n)
		tv := txt[t*d : (t+1)*d]
		for i := range n {
			iv := img[i*d : (i+1)*d]
			var s float32
			for k := range d {
				s += tv[k] * iv[k]
			}
			sim[t][i] = s
		}
	}
	return sim, nil
}
