package eval

import (
	"fmt"
	"strings"
	"time"

	"blip/data/dataset"
	"blip/data/metrics"
)

// CaptionPrompt is BLIP's captioning prompt.
const CaptionPrompt = "a picture of "

// CaptionOptions configure Caption; zero values take BLIP's evaluation
// settings (configs/caption_coco.yaml): beam 3, max length 20, min length
// 5 (lengths count [DEC] and the prompt, as transformers' max_length).
type CaptionOptions struct {
	Batch                       int
	Beams, MaxLength, MinLength int
	RepetitionPenalty           float64
	Progress                    Progress
	// Prompt is the text captions continue; NoPrompt leaves it out (an
	// empty Prompt means CaptionPrompt).
	Prompt   string
	NoPrompt bool
}

func (o *CaptionOptions) defaults() {
	if o.Batch <= 0 {
		o.Batch = 16
	}
	if o.Beams <= 0 {
		o.Beams = 3
	}
	if o.MaxLength <= 0 {
		o.MaxLength = 20
	}
	if o.MinLength <= 0 {
		o.MinLength = 5
	}
	if o.RepetitionPenalty <= 0 {
		o.RepetitionPenalty = 1
	}
	if o.Prompt == "" && !o.NoPrompt {
		o.Prompt = CaptionPrompt
	}
	if o.NoPrompt {
		o.Prompt = ""
	}
}

// CaptionItem is one generated caption, BLIP's result format plus the image
// path and token ids.
type CaptionItem struct {
	ImageID  any     `json:"image_id"`
	Caption  string  `json:"caption"`
	Image    string  `json:"image,omitempty"`
	TokenIDs []int32 `json:"token_ids,omitempty"`
	// Key is the ImageID as text (the key of the metric maps).
	Key string `json:"-"`
}

// CaptionMetrics are COCOEvalCap's BLEU-1..4 and CIDEr (fractions, not
// percent), with the number of images scored.
type CaptionMetrics struct {
	Bleu1  float64 `json:"Bleu_1"`
	Bleu2  float64 `json:"Bleu_2"`
	Bleu3  float64 `json:"Bleu_3"`
	Bleu4  float64 `json:"Bleu_4"`
	CIDEr  float64 `json:"CIDEr"`
	Images int     `json:"images"`
}

// CaptionScores scores one candidate per id against the references as
// COCOEvalCap does: both PTB-tokenised (metrics.PTBTokenize), then
// Bleu(4) and Cider.
func CaptionScores(cands map[string]string, refs map[string][]string) (CaptionMetrics, error) {
	c := make(map[string][]string, len(cands))
	r := make(map[string][]string, len(cands))
	for id, s := range cands {
		rs, ok := refs[id]
		if !ok || len(rs) == 0 {
			return CaptionMetrics{}, fmt.Errorf("eval: caption: image %s has no reference captions", id)
		}
		c[id], r[id] = []string{s}, rs
	}
	c, r = metrics.PTBTokenizeAll(c), metrics.PTBTokenizeAll(r)
	b, err := metrics.Bleu(c, r)
	if err != nil {
		return CaptionMetrics{}, fmt.Errorf("eval: caption: %w", err)
	}
	cider, err := metrics.Cider(c, r)
	if err != nil {
		return CaptionMetrics{}, fmt.Errorf("eval: caption: %w", err)
	}
	return CaptionMetrics{Bleu1: b[0], Bleu2: b[1], Bleu3: b[2], Bleu4: b[3], CIDEr: cider, Images: len(c)}, nil
}

// CaptionResult is the outcome of Caption.
type CaptionResult struct {
	Items []CaptionItem
	// Metrics are nil when no entry has reference captions.
	Metrics *CaptionMetrics
	// Time is the time spent loading images and generating.
	Time time.Duration
}

// Caption captions every distinct image of entries (by ImageID, first
// occurrence) as BLIP's caption evaluation: beam search continuing the
// prompt, the prompt stripped from the decoded text; with references
// (CaptionReferences of entries) it scores them with CaptionScores.
func Caption(env *Env, entries []dataset.Entry, opt CaptionOptions) (*CaptionResult, error) {
	opt.defaults()
	m := env.Model
	var images []dataset.Entry
	seen := map[string]bool{}
	for _, e := range entries {
		if !seen[e.ImageID] {
			seen[e.ImageID] = true
			images = append(images, e)
		}
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("eval: caption: no images")
	}
	cfg := m.CaptionConfig()
	cfg.NumBeams, cfg.MaxLength, cfg.MinLength = opt.Beams, opt.MaxLength, opt.MinLength
	cfg.RepetitionPenalty = opt.RepetitionPenalty
	var prompt []int32
	var promptText string
	if strings.TrimSpace(opt.Prompt) != "" {
		prompt = env.Encode(opt.Prompt, 0)
		promptText = env.Decode(prompt)
	}
	res := &CaptionResult{Items: make([]CaptionItem, 0, len(images))}
	t0 := time.Now()
	for start := 0; start < len(images); start += opt.Batch {
		batch := images[start:min(start+opt.Batch, len(images))]
		paths := make([]string, len(batch))
		for i, e := range batch {
			paths[i] = e.Path
		}
		pixels, err := env.LoadPixels(paths)
		if err != nil {
			return nil, err
		}
		var prompts [][]int32
		if prompt != nil {
			for range batch {
				prompts = append(prompts, prompt)
			}
		}
		out, err := m.GenerateCaptions(env.Backend, pixels, len(batch), prompts, cfg)
		if err != nil {
			return nil, fmt.Errorf("eval: caption: images %d..%d: %w", start, start+len(batch)-1, err)
		}
		for i, e := range batch {
			ids := out.Sequences[i][:out.Lengths[i]]
			res.Items = append(res.Items, CaptionItem{
				ImageID: jsonID(e.ImageID), Key: e.ImageID, Image: e.Image,
				Caption: StripPrompt(env.Decode(ids), promptText), TokenIDs: ids,
			})
		}
		opt.Progress.report("captioning", start+len(batch), len(images))
	}
	res.Time = time.Since(t0)
	refs := dataset.CaptionReferences(entries)
	cands := map[string]string{}
	for _, it := range res.Items {
		if len(refs[it.Key]) > 0 {
			cands[it.Key] = it.Caption
		}
	}
	if len(cands) > 0 {
		if len(cands) != len(res.Items) {
			return nil, fmt.Errorf("eval: caption: %d of %d images have reference captions (all or none must)", len(cands), len(res.Items))
		}
		mt, err := CaptionScores(cands, refs)
		if err != nil {
			return nil, err
		}
		res.Metrics = &mt
	}
	return res, nil
}

// StripPrompt removes the decoded prompt from the start of a decoded
// caption, as BLIP's caption[len(prompt):] does.
func StripPrompt(caption, prompt string) string {
	if prompt == "" {
		return strings.TrimSpace(caption)
	}
	if rest, ok := strings.CutPrefix(caption, prompt); ok {
		return strings.TrimSpace(rest)
	}
	return strings.TrimSpace(caption)
}
