package eval

import (
	"fmt"
	"strings"
	"time"

	"blip/data/dataset"
	"blip/data/metrics"
)

// VQAOptions configure VQA; zero values take BLIP's evaluation settings
// (configs/vqa.yaml, blip_vqa.py): generation with beam 3, max length 10,
// min length 1; rank mode keeps the k = 128 answers with the most probable
// first token.
type VQAOptions struct {
	Batch                       int
	Beams, MaxLength, MinLength int
	// AnswerList switches to rank mode: the answer is chosen from these
	// candidates (BLIP's answer_list.json).
	AnswerList []string
	K          int
	Progress   Progress
}

func (o *VQAOptions) defaults() {
	if o.Batch <= 0 {
		o.Batch = 16
	}
	if o.Beams <= 0 {
		o.Beams = 3
	}
	if o.MaxLength <= 0 {
		o.MaxLength = 10
	}
	if o.MinLength <= 0 {
		o.MinLength = 1
	}
	if o.K <= 0 {
		o.K = 128
	}
}

// VQAItem is one answered question: BLIP's result format ({"question_id",
// "answer"}) plus the question, image and, with human answers, the VQA
// accuracy.
type VQAItem struct {
	QuestionID any      `json:"question_id"`
	Answer     string   `json:"answer"`
	Question   string   `json:"question,omitempty"`
	Image      string   `json:"image,omitempty"`
	Accuracy   *float64 `json:"accuracy,omitempty"`
	// Key is the question id as text ("#index" when the entry has none).
	Key string `json:"-"`
}

// VQAMetrics are the VQA accuracy (percent, the official "overall" before
// rounding, times 100) over the questions with human answers.
type VQAMetrics struct {
	Accuracy  float64 `json:"accuracy"`
	Questions int     `json:"questions"`
}

// VQAResult is the outcome of VQA.
type VQAResult struct {
	Items []VQAItem
	// Metrics are nil when no question has answers (test splits).
	Metrics *VQAMetrics
	Mode    string
	Time    time.Duration
}

// VQA answers every question of set as BLIP's VQA evaluation: generation
// (beam search) or, with an answer list, ranking of the candidates
// (RankAnswers); questions with human answers are scored with the official
// VQA accuracy. Questions are tokenised [CLS] question [SEP] (transformers'
// conventions, see blip.Model.AnswerQuestions).
func VQA(env *Env, set *dataset.VQASet, opt VQAOptions) (*VQAResult, error) {
	opt.defaults()
	m := env.Model
	qs := set.Questions
	if len(qs) == 0 {
		return nil, fmt.Errorf("eval: vqa: no questions")
	}
	res := &VQAResult{Items: make([]VQAItem, 0, len(qs)), Mode: "generate"}
	var cands [][]int32
	if len(opt.AnswerList) > 0 {
		res.Mode = "rank"
		cands = make([][]int32, len(opt.AnswerList))
		for i, a := range opt.AnswerList {
			if strings.TrimSpace(a) == "" {
				return nil, fmt.Errorf("eval: vqa: answer list entry %d is empty", i)
			}
			cands[i] = env.Encode(a, 0)
		}
	}
	cfg := m.QAConfig()
	cfg.NumBeams, cfg.MaxLength, cfg.MinLength = opt.Beams, opt.MaxLength, opt.MinLength
	seen := map[string]int{}
	t0 := time.Now()
	for start := 0; start < len(qs); start += opt.Batch {
		batch := qs[start:min(start+opt.Batch, len(qs))]
		paths := make([]string, len(batch))
		questions := make([][]int32, len(batch))
		for i, q := range batch {
			if strings.TrimSpace(q.Question) == "" {
				return nil, fmt.Errorf("eval: vqa: question %d (id %q) is empty", q.Index, q.QuestionID)
			}
			paths[i], questions[i] = q.Path, env.Encode(q.Question, 0)
		}
		pixels, err := env.LoadPixels(paths)
		if err != nil {
			return nil, err
		}
		answers := make([]string, len(batch))
		if cands != nil {
			r, err := m.RankAnswers(env.Backend, pixels, len(batch), questions, cands, opt.K)
			if err != nil {
				return nil, fmt.Errorf("eval: vqa: questions %d..%d: %w", start, start+len(batch)-1, err)
			}
			for i := range batch {
				answers[i] = opt.AnswerList[r[i].Best]
			}
		} else {
			out, err := m.AnswerQuestions(env.Backend, pixels, len(batch), questions, cfg)
			if err != nil {
				return nil, fmt.Errorf("eval: vqa: questions %d..%d: %w", start, start+len(batch)-1, err)
			}
			for i := range batch {
				answers[i] = env.Decode(out.Sequences[i][:out.Lengths[i]])
			}
		}
		for i, q := range batch {
			key := q.QuestionID
			if key == "" {
				key = fmt.Sprintf("#%d", q.Index)
			}
			if j, dup := seen[key]; dup {
				return nil, fmt.Errorf("eval: vqa: question %d repeats question_id %s of question %d", q.Index, key, j)
			}
			seen[key] = q.Index
			var id any = jsonID(q.QuestionID)
			if q.QuestionID == "" {
				id = q.Index
			}
			res.Items = append(res.Items, VQAItem{QuestionID: id, Answer: answers[i], Question: q.Question, Image: q.Image, Key: key})
		}
		opt.Progress.report("answering", start+len(batch), len(qs))
	}
	res.Time = time.Since(t0)
	preds, gt := map[string]string{}, map[string][]string{}
	for i, it := range res.Items {
		if a := qs[i].Answers; len(a) > 0 {
			preds[it.Key], gt[it.Key] = it.Answer, a
		}
	}
	if len(gt) > 0 {
		mean, per, err := metrics.VQAAccuracies(preds, gt)
		if err != nil {
			return nil, fmt.Errorf("eval: vqa: %w", err)
		}
		for i := range res.Items {
			if a, ok := per[res.Items[i].Key]; ok {
				res.Items[i].Accuracy = &a
			}
		}
		res.Metrics = &VQAMetrics{Accuracy: 100 * mean, Questions: len(gt)}
	}
	return res, nil
}
