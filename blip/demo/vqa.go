package demo

import (
	"fmt"
	"path/filepath"

	"blip/blip"
	"blip/blip/finetune"
	"blip/data/dataset"
	"blip/data/shapes"
	"blip/data/tokenizer"
	"blip/gpu"
)

// vqaResult is the VQA stage's outcome.
type vqaResult struct {
	Model   string // the fine-tuned folder
	Steps   int
	First   float64 // mean loss of the first and last tenth of the steps
	Last    float64
	Answers map[int]string // question id -> generated answer (test)
}

// questionSet turns the scenes' questions into a VQA set whose images
// resolve in the world folder.
func questionSet(world string, scenes []shapes.Scene) *dataset.VQASet {
	v := &dataset.VQASet{}
	for _, s := range scenes {
		for _, q := range s.Questions {
			v.Questions = append(v.Questions, dataset.VQAQuestion{
				QuestionID: fmt.Sprint(q.QuestionID), Question: q.Question, Answers: []string{q.Answer},
				Dataset: "vqa", Image: s.Image, Path: filepath.Join(world, s.Image), ImageID: fmt.Sprint(s.ImageID),
				Index: len(v.Questions),
			})
		}
	}
	return v
}

// trainVQA fine-tunes the pretrained VQA export on the train questions
// (blip/finetune's vqa task: the question encoded with the image, the
// answer decoded from [DEC]), for o.VQASteps steps.
func trainVQA(o *Options, be gpu.Backend, world string, scenes []shapes.Scene, init string) (*vqaResult, error) {
	qs := questionSet(world, scenes)
	cfg := finetune.Defaults("vqa")
	cfg.Init, cfg.BatchSize, cfg.InitLR, cfg.MinLR, cfg.WarmupSteps = init, o.BatchSize, o.VQALR, o.VQALR/10, o.WarmupSteps/2
	cfg.MaxLength, cfg.AnswerLength, cfg.MaxAnswers = questionLength, 4, 1
	cfg.Augment, cfg.Dropout, cfg.Workers, cfg.MaxGradNorm, cfg.Seed = false, 0, 2, 1, uint64(o.Seed)
	epochSteps := len(qs.Questions) / cfg.BatchSize
	if epochSteps < 1 {
		return nil, fmt.Errorf("demo: %d train questions: too few for a batch of %d", len(qs.Questions), cfg.BatchSize)
	}
	cfg.Epochs = (o.VQASteps + epochSteps - 1) / epochSteps
	cfg.StepsPerEpoch = (o.VQASteps + cfg.Epochs - 1) / cfg.Epochs
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out := filepath.Join(o.Out, "vqa-finetune")
	o.logf("vqa: fine-tune the vqa export on %d train questions: %d epochs of %d steps of %d, lr %g", len(qs.Questions), cfg.Epochs, min(epochSteps, cfg.StepsPerEpoch), cfg.BatchSize, cfg.InitLR)
	var losses []float64
	sum, err := finetune.Run(&cfg, be, qs, finetune.Options{Out: out, Progress: func(m finetune.Metrics, sps float64) {
		losses = append(losses, m.Loss)
		if len(losses)%100 == 0 {
			o.logf("  vqa step %d  loss %.3f  %.0f samples/s", m.Step, m.Loss, sps)
		}
	}})
	if err != nil {
		return nil, err
	}
	w := max(1, len(losses)/10)
	mean := func(x []float64) float64 {
		var s float64
		for _, v := range x {
			s += v
		}
		return s / float64(len(x))
	}
	return &vqaResult{Model: sum.Model, Steps: len(losses), First: mean(losses[:w]), Last: mean(losses[len(losses)-w:])}, nil
}

// questionLength is the token length questions are cut to.
const questionLength = 20

// answerAll answers every question of the test scenes with the fine-tuned
// folder: greedy decoding from [DEC] against the question states, the
// question's padding masked as in training (BLIP's generate passes the
// question mask).
func answerAll(be gpu.Backend, dir string, pixels []float32, scenes []shapes.Scene) (map[int]string, error) {
	m, err := blip.LoadDir(dir, be)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	type item struct {
		scene int
		q     shapes.Question
	}
	var items []item
	for i, s := range scenes {
		for _, q := range s.Questions {
			items = append(items, item{i, q})
		}
	}
	per := len(pixels) / len(scenes)
	cfg := m.QAConfig()
	cfg.MaxLength = 4
	out := map[int]string{}
	for s := 0; s < len(items); s += evalBatch {
		batch := items[s:min(s+evalBatch, len(items))]
		px := make([]float32, 0, len(batch)*per)
		var qids [][]int32
		for _, it := range batch {
			px = append(px, pixels[it.scene*per:(it.scene+1)*per]...)
			enc := tok.EncodeWith(tokenizer.PreQuestion(it.q.Question, 30), tokenizer.Options{MaxLength: questionLength})
			row := make([]int32, len(enc.IDs))
			for j, id := range enc.IDs {
				row[j] = int32(id)
			}
			qids = append(qids, row)
		}
		t := &m.Config.TextConfig
		ids, mask, n, err := blip.PadRows(qids, int32(t.PadTokenID), t.MaxPositionEmbeddings)
		if err != nil {
			return nil, err
		}
		st, err := m.QuestionStates(be, px, len(batch), ids, mask, n)
		if err != nil {
			return nil, err
		}
		st.Mask = mask
		g, err := m.GenerateFrom(be, st, cfg)
		if err != nil {
			return nil, err
		}
		for i, it := range batch {
			seq := g.Sequences[i][:g.Lengths[i]]
			ints := make([]int, len(seq))
			for j, id := range seq {
				ints[j] = int(id)
			}
			out[it.q.QuestionID] = tok.Decode(ints, true)
		}
	}
	return out, nil
}

// vqaSubset scores the answers to the questions of scenes idx, with the
// chance level and the question-only prior of the train questions.
func vqaSubset(s *Subset, wc shapes.Config, train []shapes.Question, scenes []shapes.Scene, idx []int, answers map[int]string) {
	var qs []shapes.Question
	for _, i := range idx {
		qs = append(qs, scenes[i].Questions...)
	}
	if len(qs) == 0 || answers == nil {
		return
	}
	r := shapes.EvaluateVQA(answers, qs)
	c := shapes.ChanceVQA(wc, qs)
	p, _ := shapes.PriorVQA(train, qs)
	s.VQA, s.ChanceVQA, s.PriorVQA = &r, &c, &p
}
