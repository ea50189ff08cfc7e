package finetune

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"blip/blip"
	"blip/data/augment"
	"blip/data/dataset"
	"blip/data/preprocess"
	"blip/data/tokenizer"
	"blip/graph"
)

// Tokens are the special ids fine-tuning needs.
type Tokens struct {
	Dec, Pad int
}

// encodeCaption makes one caption row: [DEC] prompt caption [SEP] padded
// to n, its mask and its labels (n-1): the next tokens, with the prompt's
// words and padding ignored (BLIP: decoder_targets[:, :prompt_length] =
// -100 with prompt_length = len(tokenizer(prompt).input_ids) - 1).
func encodeCaption(tok *tokenizer.Tokenizer, dec int, prompt, caption string, maxWords, n int) ([]int32, []float32, []int32, error) {
	c := tokenizer.PreCaption(caption, maxWords)
	if c == "" {
		return nil, nil, nil, fmt.Errorf("empty caption")
	}
	enc := tok.EncodeWith(prompt+c, tokenizer.Options{MaxLength: n, PadTo: n})
	ids, mask := make([]int32, n), make([]float32, n)
	for i, id := range enc.IDs {
		ids[i], mask[i] = int32(id), float32(enc.AttentionMask[i])
	}
	ids[0] = int32(dec)
	labels, err := blip.ShiftLabels(ids, 1, n, tok.Pad)
	if err != nil {
		return nil, nil, nil, err
	}
	promptLen := 0
	if strings.TrimSpace(prompt) != "" {
		promptLen = len(tok.Encode(prompt)) - 1 // [CLS] and the prompt's words
	}
	for j := 0; j < promptLen-1 && j < len(labels); j++ {
		labels[j] = graph.IgnoreIndex
	}
	return ids, mask, labels, nil
}

// answerRows are a question's answers, at most max, most weighted first
// (ties in file order), with BLIP's weights (the share of annotators who
// gave each; not renormalised after the cap, as BLIP keeps them).
func answerRows(q dataset.VQAQuestion, max int) ([]string, []float64) {
	answers, weights := q.AnswerWeights()
	idx := make([]int, len(answers))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return weights[idx[a]] > weights[idx[b]] })
	if len(idx) > max {
		idx = idx[:max]
	}
	var as []string
	var ws []float64
	for _, i := range idx {
		as, ws = append(as, answers[i]), append(ws, weights[i])
	}
	return as, ws
}

// example is one decoded sample.
type example struct {
	patches []float32
	ids     []int32
	mask    []float32
	labels  []int32 // caption
	// vqa: per answer row (MaxAnswers of them) ids, mask, labels, weight.
	ansIDs    []int32
	ansMask   []float32
	ansLabels []int32
	ansWeight []float32
	imgIdx    int64 // retrieval
}

// ErrEpochEnd is returned by Batcher.Next when an epoch's data ran out
// before its step count (samples were skipped).
var ErrEpochEnd = errors.New("finetune: the epoch's data ran out")

// Batcher turns a dataset (dataset.Pairs for caption and retrieval,
// *dataset.VQASet for vqa) into batches: images decoded and transformed (seeded by run seed,
// epoch and index), texts encoded, shuffled per epoch, in order whatever
// the number of workers; incomplete last batches are dropped.
type Batcher struct {
	cfg    *Config
	vc     *blip.VisionConfig
	ds     dataset.Indexed
	vqa    *dataset.VQASet
	tok    *tokenizer.Tokenizer
	toks   Tokens
	tr     *augment.Transform
	strict bool
	loader *dataset.Loader[example]
	epoch  int
	stats  dataset.Stats
	// imageIdx maps image ids to integers (retrieval).
	imageIdx map[string]int64
}

// NewBatcher prepares batches of ds for cfg and a model of vision config
// vc; strict makes a bad sample fatal instead of skipped and counted.
func NewBatcher(cfg *Config, vc *blip.VisionConfig, ds dataset.Indexed, tok *tokenizer.Tokenizer, toks Tokens, strict bool) (*Batcher, error) {
	b := &Batcher{cfg: cfg, vc: vc, ds: ds, tok: tok, toks: toks, strict: strict, epoch: -1}
	if cfg.Task == "vqa" {
		v, ok := ds.(*dataset.VQASet)
		if !ok {
			return nil, fmt.Errorf("finetune: task vqa needs VQA annotations (question, answer), got %T", ds)
		}
		b.vqa = v
	}
	if cfg.Task == "retrieval" {
		ids, err := ImageIDs(ds)
		if err != nil {
			return nil, err
		}
		b.imageIdx = ids
	}
	if cfg.Augment {
		b.tr = augment.NewTrain(vc.ImageSize, cfg.MinScale)
		b.tr.FlipP = cfg.HFlip
		if !cfg.RandAugment {
			b.tr.Aug = nil
		}
	} else {
		b.tr = augment.NewTest(vc.ImageSize)
	}
	return b, nil
}

// ImageIDs maps each distinct ImageID of ds to an integer in order of
// first appearance, as BLIP's coco_karpathy_train and flickr30k_train
// number their "image_id"s: the ids whose equality makes captions
// positives of each other in retrieval's ITC and keeps them out of ITM's
// negatives. Samples without an id are refused.
func ImageIDs(ds dataset.Indexed) (map[string]int64, error) {
	m := map[string]int64{}
	for i := range ds.Len() {
		s, err := ds.At(i)
		if err != nil {
			return nil, err
		}
		if s.ImageID == "" {
			return nil, fmt.Errorf("finetune: retrieval: sample %d (%s) has no image id", i, s.Key)
		}
		if _, ok := m[s.ImageID]; !ok {
			m[s.ImageID] = int64(len(m))
		}
	}
	return m, nil
}

// EpochSteps is the steps of an epoch: samples over batch size, capped by
// steps_per_epoch.
func (b *Batcher) EpochSteps() int {
	steps := b.ds.Len() / b.cfg.BatchSize
	if s := b.cfg.StepsPerEpoch; s > 0 && s < steps {
		steps = s
	}
	return steps
}

func (b *Batcher) decode(s dataset.Sample, pos dataset.Position) (example, error) {
	cfg := b.cfg
	var ex example
	var err error
	switch cfg.Task {
	case "caption":
		ex.ids, ex.mask, ex.labels, err = encodeCaption(b.tok, b.toks.Dec, cfg.Prompt, s.Caption, cfg.MaxWords, cfg.MaxLength)
		if err != nil {
			return ex, err
		}
	case "retrieval":
		// BLIP: pre_caption(caption, max_words), then the tokenizer with
		// padding to max_length 35, [CLS] first.
		c := tokenizer.PreCaption(s.Caption, cfg.MaxWords)
		if c == "" {
			return ex, fmt.Errorf("empty caption")
		}
		enc := b.tok.EncodeWith(c, tokenizer.Options{MaxLength: cfg.MaxLength, PadTo: cfg.MaxLength})
		for i, id := range enc.IDs {
			ex.ids = append(ex.ids, int32(id))
			ex.mask = append(ex.mask, float32(enc.AttentionMask[i]))
		}
		id, ok := b.imageIdx[s.ImageID]
		if !ok {
			return ex, fmt.Errorf("image id %q is not in the data's id table", s.ImageID)
		}
		ex.imgIdx = id
	case "vqa":
		q := b.vqa.Questions[s.Index]
		question := tokenizer.PreQuestion(q.Question, cfg.MaxWords)
		if question == "" {
			return ex, fmt.Errorf("empty question")
		}
		enc := b.tok.EncodeWith(question, tokenizer.Options{MaxLength: cfg.MaxLength, PadTo: cfg.MaxLength})
		for i, id := range enc.IDs {
			ex.ids = append(ex.ids, int32(id))
			ex.mask = append(ex.mask, float32(enc.AttentionMask[i]))
		}
		answers, weights := answerRows(q, cfg.MaxAnswers)
		if len(answers) == 0 {
			return ex, fmt.Errorf("question %q has no answer", q.Question)
		}
		ta := cfg.AnswerLength
		for k := range cfg.MaxAnswers {
			ids, mask, labels := make([]int32, ta), make([]float32, ta), make([]int32, ta-1)
			var w float32
			if k < len(answers) {
				enc := b.tok.EncodeWith(answers[k], tokenizer.Options{MaxLength: ta, PadTo: ta})
				for i, id := range enc.IDs {
					ids[i], mask[i] = int32(id), float32(enc.AttentionMask[i])
				}
				ids[0] = int32(b.toks.Dec)
				if labels, err = blip.ShiftLabels(ids, 1, ta, b.tok.Pad); err != nil {
					return ex, err
				}
				w = float32(weights[k])
			} else {
				for i := range labels {
					labels[i] = graph.IgnoreIndex
				}
				ids[0], mask[0] = int32(b.toks.Dec), 1
			}
			ex.ansIDs = append(ex.ansIDs, ids...)
			ex.ansMask = append(ex.ansMask, mask...)
			ex.ansLabels = append(ex.ansLabels, labels...)
			ex.ansWeight = append(ex.ansWeight, w)
		}
	}
	data, err := s.Image()
	if err != nil {
		return ex, err
	}
	img, err := preprocess.Decoder{}.Decode(s.Key, data)
	if err != nil {
		return ex, err
	}
	px, err := b.tr.Apply(img, augment.SampleSeed(cfg.Seed, pos.Epoch, pos.Index))
	if err != nil {
		return ex, err
	}
	ex.patches, err = blip.Patchify(px, 1, b.vc)
	return ex, err
}

func (b *Batcher) start(pos dataset.Position) error {
	b.Close()
	l, err := dataset.NewLoaderPos[example](b.ds, b.decode, dataset.Options{
		Workers: b.cfg.Workers, Prefetch: 2 * b.cfg.Workers * max(1, b.cfg.BatchSize/b.cfg.Workers),
		Epochs: pos.Epoch + 1, Shuffle: true, Seed: b.cfg.Seed, Strict: b.strict, Start: pos,
	})
	if err != nil {
		return err
	}
	b.loader, b.epoch = l, pos.Epoch
	return nil
}

// Next returns the batch at pos and the position after it.
func (b *Batcher) Next(pos dataset.Position) (*Batch, dataset.Position, error) {
	if b.loader == nil || b.epoch != pos.Epoch || b.loader.Position() != pos {
		if err := b.start(pos); err != nil {
			return nil, pos, err
		}
	}
	cfg := b.cfg
	batch := &Batch{}
	for len(batch.Keys) < cfg.BatchSize {
		it, err := b.loader.Next()
		if err == io.EOF {
			b.Close()
			return nil, pos, ErrEpochEnd
		}
		if err != nil {
			return nil, pos, err
		}
		x := it.Value
		q := len(batch.Keys)
		batch.Patches = append(batch.Patches, x.patches...)
		batch.IDs = append(batch.IDs, x.ids...)
		batch.Mask = append(batch.Mask, x.mask...)
		batch.Labels = append(batch.Labels, x.labels...)
		for range x.ansWeight {
			batch.AnsQ = append(batch.AnsQ, int32(q))
		}
		batch.AnsIDs = append(batch.AnsIDs, x.ansIDs...)
		batch.AnsMask = append(batch.AnsMask, x.ansMask...)
		batch.AnsLabels = append(batch.AnsLabels, x.ansLabels...)
		batch.AnsWeight = append(batch.AnsWeight, x.ansWeight...)
		if cfg.Task == "retrieval" {
			batch.ImageIdx = append(batch.ImageIdx, x.imgIdx)
		}
		batch.Keys = append(batch.Keys, it.Sample.Key)
	}
	return batch, b.loader.Position(), nil
}

// Stats returns the samples seen and skipped so far.
func (b *Batcher) Stats() dataset.Stats {
	s := b.stats.Clone()
	if b.loader != nil {
		s.Merge(b.loader.Stats())
	}
	return s
}

// Close stops the workers.
func (b *Batcher) Close() {
	if b.loader != nil {
		b.stats.Merge(b.loader.Stats())
		b.loader.Close()
		b.loader = nil
	}
}
