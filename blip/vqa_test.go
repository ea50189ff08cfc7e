package blip

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"blip/data/tokenizer"
	"blip/gpu"
	"blip/graph"
)

// tinyQA writes a random BlipForQuestionAnswering folder with the tiny
// captioning config (scale 0.5: well separated argmaxes) and returns it
// with its tokenizer.
func tinyQA(t *testing.T) (string, *tokenizer.Tokenizer) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny-vqa")
	if err := WriteRandomFolderFrom(dir, filepath.Join(tinyDir, "tiny-captioning"), KindQA, 7, 0.5); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, tok
}

func encodeAll(tok *tokenizer.Tokenizer, texts ...string) [][]int32 {
	out := make([][]int32, len(texts))
	for i, s := range texts {
		for _, id := range tok.Encode(s) {
			out[i] = append(out[i], int32(id))
		}
	}
	return out
}

// questionStatesDirect encodes the questions in one graph of the model's
// modules (vision, then text_encoder with the question mask), independently
// of QuestionStates.
func questionStatesDirect(t *testing.T, m *Model, be gpu.Backend, pixels []float32, ids []int32, mask []float32, b, n int) *EncoderStates {
	t.Helper()
	v := &m.Config.VisionConfig
	patches, err := Patchify(pixels, b, v)
	if err != nil {
		t.Fatal(err)
	}
	g := graph.New()
	pin := g.Input("p", gpu.F32, b, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize)
	iin := g.Input("i", gpu.I32, b, n)
	min := g.Input("m", gpu.F32, b, n)
	img, err := m.VisionForward(g, pin)
	if err != nil {
		t.Fatal(err)
	}
	q := m.TextEncoder.Forward(g, iin, TextInput{Mask: min, Image: img})
	plan, err := g.Compile(be, graph.Config{Outputs: []*graph.Tensor{q}, DropoutOff: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	out := make([]float32, q.Numel())
	if err := firstErr(plan.WriteF32(pin, patches), plan.WriteI32(iin, ids), plan.WriteF32(min, mask), plan.Run(), plan.ReadF32(q, out)); err != nil {
		t.Fatal(err)
	}
	return &EncoderStates{States: out, Items: b, Tokens: n, Width: m.Config.TextConfig.HiddenSize}
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// TestVQAGreedyBruteForce: AnswerQuestions (stepper + generate) gives the
// tokens of a brute-force greedy loop that runs the whole decoder over each
// row's prefix, on every backend; beam search runs too.
func TestVQAGreedyBruteForce(t *testing.T) {
	gd := openGolden(t)
	dir, tok := tinyQA(t)
	pixels := gd.f32("pixel_values")
	const b, maxLen = 3, 10
	pixels = pixels[:b*3*64*64]
	questions := encodeAll(tok, "what is in the picture?", "how many cats", "is there a rocket on the pad")
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be := bc.open(t)
			m, err := LoadDir(dir, be)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			cfg := m.QAConfig()
			cfg.MaxLength = maxLen
			out, err := m.AnswerQuestions(be, pixels, b, questions, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tc := &m.Config.TextConfig
			ids, mask, n, err := PadRows(questions, int32(tc.PadTokenID), 0)
			if err != nil {
				t.Fatal(err)
			}
			enc := questionStatesDirect(t, m, be, pixels, ids, mask, b, n)
			v := tc.VocabSize
			for i := range b {
				seq := []int32{int32(tc.BosTokenID)}
				for len(seq) < maxLen {
					logits, err := m.DecoderLogits(be, enc, []int{i}, seq, nil, len(seq))
					if err != nil {
						t.Fatal(err)
					}
					next := argmax(logits[(len(seq)-1)*v:])
					seq = append(seq, next)
					if next == int32(tc.SepTokenID) {
						break
					}
				}
				got := out.Sequences[i][:out.Lengths[i]]
				t.Logf("question %d: answer %v %q", i, got, tok.Decode(int32sToInts(got), true))
				if len(got) != len(seq) {
					t.Fatalf("question %d: generate %v, brute force %v", i, got, seq)
				}
				for j := range seq {
					if got[j] != seq[j] {
						t.Fatalf("question %d: generate %v, brute force %v", i, got, seq)
					}
				}
			}
			cfg.NumBeams = 3
			beam, err := m.AnswerQuestions(be, pixels, b, questions, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range b {
				if beam.Sequences[i][0] != int32(tc.BosTokenID) || beam.Lengths[i] < 2 {
					t.Errorf("beam answer %d: %v", i, beam.Sequences[i])
				}
			}
		})
	}
}

func int32sToInts(x []int32) []int {
	out := make([]int, len(x))
	for i, v := range x {
		out[i] = int(v)
	}
	return out
}

// TestRankAnswers: rank mode keeps the k candidates whose first token is
// most probable and picks the highest full-sequence log-likelihood, both
// recomputed here per candidate without padding.
func TestRankAnswers(t *testing.T) {
	gd := openGolden(t)
	dir, tok := tinyQA(t)
	pixels := gd.f32("pixel_values")[:2*3*64*64]
	questions := encodeAll(tok, "what is this?", "what color is the cat")
	cands := encodeAll(tok, "a cat", "rocket", "a cup of coffee", "man", "two", "space suit")
	const k = 4
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be := bc.open(t)
			m, err := LoadDir(dir, be)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			got, err := m.RankAnswers(be, pixels, 2, questions, cands, k)
			if err != nil {
				t.Fatal(err)
			}
			tc := &m.Config.TextConfig
			ids, mask, n, _ := PadRows(questions, int32(tc.PadTokenID), 0)
			enc := questionStatesDirect(t, m, be, pixels, ids, mask, 2, n)
			v := tc.VocabSize
			for i := range 2 {
				first, err := m.DecoderLogits(be, enc, []int{i}, []int32{int32(tc.BosTokenID)}, nil, 1)
				if err != nil {
					t.Fatal(err)
				}
				p := softmax64(first)
				lls := make([]float64, len(cands))
				for j, c := range cands {
					seq := append([]int32{int32(tc.BosTokenID)}, c[1:]...)
					logits, err := m.DecoderLogits(be, enc, []int{i}, seq, nil, len(seq))
					if err != nil {
						t.Fatal(err)
					}
					for s := 0; s+1 < len(seq); s++ {
						lls[j] += math.Log(softmax64(logits[s*v : (s+1)*v])[seq[s+1]])
					}
				}
				r := got[i]
				t.Logf("question %d: top-k %v, first probs %v, log-likelihoods %v, best %d", i, r.TopK, r.FirstProbs, r.LogLikelihoods, r.Best)
				if len(r.TopK) != k {
					t.Fatalf("top-k %v", r.TopK)
				}
				// No candidate outside the top-k beats the weakest one kept.
				kept := map[int]bool{}
				weakest := math.Inf(1)
				for _, j := range r.TopK {
					kept[j] = true
					weakest = min(weakest, p[cands[j][1]])
				}
				best := r.TopK[0]
				for jj, j := range r.TopK {
					if d := math.Abs(r.LogLikelihoods[jj] - lls[j]); d > 1e-3 {
						t.Errorf("candidate %d: log-likelihood %v, direct %v", j, r.LogLikelihoods[jj], lls[j])
					}
					if lls[j] > lls[best] {
						best = j
					}
				}
				for j := range cands {
					if !kept[j] && p[cands[j][1]] > weakest+1e-6 {
						t.Errorf("candidate %d (first p %v) left out of top-k %v", j, p[cands[j][1]], r.TopK)
					}
				}
				if r.Best != best {
					t.Errorf("best %d, direct %d", r.Best, best)
				}
			}
		})
	}
}

// TestVQAErrors: a captioning model has no VQA, bad questions are errors.
func TestVQAErrors(t *testing.T) {
	be := backends[0].open(t)
	m := loadTiny(t, "tiny-captioning", be)
	px := make([]float32, 3*64*64)
	if _, err := m.AnswerQuestions(be, px, 1, [][]int32{{2, 5, 3}}, m.QAConfig()); !errors.Is(err, errNoModule) {
		t.Errorf("VQA on a captioning model: %v", err)
	}
	if _, err := m.AnswerQuestions(be, px, 1, [][]int32{{}}, m.QAConfig()); err == nil {
		t.Error("an empty question: no error")
	}
	if _, err := m.AnswerQuestions(be, px, 2, [][]int32{{2, 3}}, m.QAConfig()); err == nil {
		t.Error("one question for two images: no error")
	}
	if _, err := m.MatchTexts(be, px, 1, [][]int32{{2, 3}}); !errors.Is(err, errNoModule) {
		t.Errorf("ITM on a captioning model: %v", err)
	}
}

// TestVQAFolderLoads: the random QA folder declares exactly the tensors the
// QA model reads.
func TestVQAFolderLoads(t *testing.T) {
	dir, _ := tinyQA(t)
	f, err := OpenFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Kind != KindQA {
		t.Fatalf("kind %v", f.Kind)
	}
	m, err := Load(f, backends[0].open(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if u := f.Weights.Unused(); len(u) > 0 {
		t.Errorf("unused weights %v", u)
	}
}

// TestGenerateFromMasked: with an encoder keep-mask (the salesforce/BLIP
// convention of masking padded question states) the stepper's greedy answer
// equals a brute-force loop over DecoderLogits with the same mask.
func TestGenerateFromMasked(t *testing.T) {
	gd := openGolden(t)
	dir, tok := tinyQA(t)
	be := backends[0].open(t)
	m, err := LoadDir(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	questions := encodeAll(tok, "what is on the table", "cat?")
	tc := &m.Config.TextConfig
	ids, mask, n, err := PadRows(questions, int32(tc.PadTokenID), 0)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := m.QuestionStates(be, gd.f32("pixel_values")[:2*3*64*64], 2, ids, mask, n)
	if err != nil {
		t.Fatal(err)
	}
	enc.Mask = mask
	cfg := m.QAConfig()
	cfg.MaxLength = 8
	out, err := m.GenerateFrom(be, enc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := tc.VocabSize
	for i := range 2 {
		seq := []int32{int32(tc.BosTokenID)}
		for len(seq) < cfg.MaxLength {
			logits, err := m.DecoderLogits(be, enc, []int{i}, seq, nil, len(seq))
			if err != nil {
				t.Fatal(err)
			}
			seq = append(seq, argmax(logits[(len(seq)-1)*v:]))
			if seq[len(seq)-1] == int32(tc.SepTokenID) {
				break
			}
		}
		got := out.Sequences[i][:out.Lengths[i]]
		if len(got) != len(seq) {
			t.Fatalf("row %d: generate %v, brute force %v", i, got, seq)
		}
		for j := range seq {
			if got[j] != seq[j] {
				t.Fatalf("row %d: generate %v, brute force %v", i, got, seq)
			}
		}
	}
}

// TestPadRows packs and masks ragged rows and refuses bad ones.
func TestPadRows(t *testing.T) {
	ids, mask, n, err := PadRows([][]int32{{2, 5, 3}, {2, 3}}, 0, 4)
	if err != nil || n != 3 || len(ids) != 6 || ids[5] != 0 || mask[5] != 0 || mask[4] != 1 {
		t.Errorf("PadRows: %v %v %d %v", ids, mask, n, err)
	}
	for _, bad := range [][][]int32{nil, {{}}, {{1, 2, 3, 4, 5}}} {
		if _, _, _, err := PadRows(bad, 0, 4); err == nil {
			t.Errorf("PadRows(%v): no error", bad)
		}
	}
}
