package graph

import (
	"math/rand/v2"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
)

// tblock is one BERT-style transformer block with a classifier, built on a
// backend with random parameters and a fixed random batch.
type tblock struct {
	ps                          *Params
	g                           *Graph
	loss                        *Tensor
	ids, mask, labels, tokLabel *Tensor
	idv, tokv, labv             []int32
	maskv                       []float32
	rng                         *rand.Rand
}

func newBlock(t testing.TB, be gpu.Backend) *tblock {
	t.Helper()
	const B, T, V, C, H, F, K = blockB, blockT, blockV, blockC, 2, 32, 3
	ps := NewParams()
	rng := rand.New(rand.NewPCG(5, 5))
	type init struct {
		p     *Param
		scale float64
		one   bool
	}
	var inits []init
	mk := func(name string, scale float64, shape ...int) *Param {
		p, err := ps.New(name, shape...)
		if err != nil {
			t.Fatal(err)
		}
		inits = append(inits, init{p, scale, false})
		return p
	}
	ln := func(name string) (*Param, *Param) {
		g := mk(name+".weight", 0, C)
		inits[len(inits)-1].one = true
		return g, mk(name+".bias", 0, C)
	}
	word := mk("embeddings.word_embeddings.weight", 0.5, V, C)
	pos := mk("embeddings.position_embeddings.weight", 0.1, T, C)
	lnE, lnEb := ln("embeddings.LayerNorm")
	wq, bq := mk("attention.self.query.weight", 0.3, C, C), mk("attention.self.query.bias", 0, C)
	wk, bk := mk("attention.self.key.weight", 0.3, C, C), mk("attention.self.key.bias", 0, C)
	wv, bv := mk("attention.self.value.weight", 0.3, C, C), mk("attention.self.value.bias", 0, C)
	wo, bo := mk("attention.output.dense.weight", 0.3, C, C), mk("attention.output.dense.bias", 0, C)
	ln1, ln1b := ln("attention.output.LayerNorm")
	w1, b1 := mk("intermediate.dense.weight", 0.3, F, C), mk("intermediate.dense.bias", 0, F)
	w2, b2 := mk("output.dense.weight", 0.2, C, F), mk("output.dense.bias", 0, C)
	ln2, ln2b := ln("output.LayerNorm")
	wp, bp := mk("pooler.dense.weight", 0.3, C, C), mk("pooler.dense.bias", 0, C)
	wc, bc := mk("classifier.weight", 0.3, K, C), mk("classifier.bias", 0, K)
	dec := mk("cls.predictions.bias", 0, V)
	if err := ps.Alias("cls.predictions.decoder.weight", word); err != nil {
		t.Fatal(err)
	}
	if err := ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	for _, in := range inits {
		d := randData(rng, in.p.Numel(), in.scale)
		if in.one {
			for i := range d {
				d[i] = 1
			}
		}
		if err := in.p.Write(d); err != nil {
			t.Fatal(err)
		}
	}

	g := New()
	ids := g.Input("input_ids", gpu.I32, B, T)
	mask := g.Input("attention_mask", gpu.F32, B, T)
	labels := g.Input("labels", gpu.I32, B)
	tokLabels := g.Input("token_labels", gpu.I32, B, T)
	P := g.Param
	h := g.Add(g.Embedding(P(word), ids), P(pos))
	h = g.LayerNorm(h, P(lnE), P(lnEb), 1e-12)
	func() {
		defer g.Scope("attention")()
		q := g.Linear(h, P(wq), P(bq))
		k := g.Linear(h, P(wk), P(bk))
		v := g.Linear(h, P(wv), P(bv))
		a := g.Attention(q, k, v, AttentionOpts{Heads: H, Mask: mask})
		a = g.Dropout(g.Linear(a, P(wo), P(bo)), 0.1)
		h = g.LayerNorm(g.Add(h, a), P(ln1), P(ln1b), 1e-12)
	}()
	m := g.Linear(g.LinearAct(h, P(w1), P(b1), gpu.ActGELU), P(w2), P(b2))
	h = g.LayerNorm(g.Add(h, g.Dropout(m, 0.1)), P(ln2), P(ln2b), 1e-12)
	cls := g.Reshape(g.Slice(h, 1, 0, 1), B, C)
	logits := g.Linear(g.LinearAct(cls, P(wp), P(bp), gpu.ActTanh), P(wc), P(bc))
	tokLogits := g.Linear(h, P(ps.Get("cls.predictions.decoder.weight")), P(dec))
	loss := g.Add(g.CrossEntropy(logits, labels, 0), g.Scale(g.CrossEntropy(tokLogits, tokLabels, 0.1), 0.5))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}

	idv := make([]int32, B*T)
	maskv := make([]float32, B*T)
	tokv := make([]int32, B*T)
	for i := range idv {
		idv[i] = int32(rng.IntN(V))
		tokv[i] = int32(rng.IntN(V))
		if i%T >= T-1-i/T%2 { // padding at the end of some rows
			maskv[i], tokv[i] = -1e9, IgnoreIndex
		}
	}
	labv := []int32{0, 2, 1, 2}
	return &tblock{ps: ps, g: g, loss: loss, ids: ids, mask: mask, labels: labels, tokLabel: tokLabels,
		idv: idv, tokv: tokv, labv: labv, maskv: maskv, rng: rng}
}

const blockB, blockT, blockV, blockC = 4, 6, 20, 16

// write sets the batch into a plan of the block's graph.
func (b *tblock) write(t testing.TB, p *Plan) {
	t.Helper()
	for _, err := range []error{p.WriteI32(b.ids, b.idv), p.WriteF32(b.mask, b.maskv), p.WriteI32(b.labels, b.labv),
		p.WriteI32(b.tokLabel, b.tokv)} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// compile compiles the block's graph with cfg on be and writes the batch;
// the test closes the plan.
func (b *tblock) compile(t testing.TB, be gpu.Backend, cfg Config) *Plan {
	t.Helper()
	p, err := b.g.Compile(be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.write(t, p)
	return p
}

// lossOf runs p (after zeroing the gradients when train) and reads the
// loss.
func (b *tblock) lossOf(t testing.TB, p *Plan, train bool) float32 {
	t.Helper()
	if train {
		if err := b.ps.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	l := make([]float32, 1)
	if err := p.ReadF32(b.loss, l); err != nil {
		t.Fatal(err)
	}
	return l[0]
}

// TestTrainTransformerBlock trains one BERT-style block (embeddings with a
// tied output projection, masked self-attention, MLP, layer norms, dropout,
// a tanh pooler, a classification and a token loss) with plain SGD on a
// fixed random batch, on the CPU backend, and checks that the loss falls.
// Each step is the plan's calls plus the SGD update, recorded together and
// synced once.
func TestTrainTransformerBlock(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	blk := newBlock(t, be)
	g, loss, ps := blk.g, blk.loss, blk.ps
	train, err := g.Compile(be, Config{Loss: loss})
	if err != nil {
		t.Fatal(err)
	}
	defer train.Close()
	eval, err := g.Compile(be, Config{Outputs: []*Tensor{loss}, DropoutOff: true})
	if err != nil {
		t.Fatal(err)
	}
	defer eval.Close()
	t.Logf("train plan %+v", train.Stats())
	t.Logf("eval plan  %+v", eval.Stats())

	blk.write(t, train)
	blk.write(t, eval)
	evalLoss := func() float32 {
		if err := eval.Run(); err != nil {
			t.Fatal(err)
		}
		l := make([]float32, 1)
		if err := eval.ReadF32(loss, l); err != nil {
			t.Fatal(err)
		}
		return l[0]
	}

	// SGD: value -= lr * grad, then zero the gradient, as calls after the
	// plan's in the same submission.
	const lr = 0.2
	var sgd []gpu.Call
	for _, p := range ps.List() {
		sgd = append(sgd,
			gpu.Unary{Op: gpu.UnaryScale, X: p.Grad(), Y: p.Grad(), N: p.Numel(), Alpha: -lr},
			gpu.Binary{Op: gpu.BinaryAdd, A: p.Value(), B: p.Grad(), C: p.Value(), N: p.Numel()})
	}
	before := evalLoss()
	if err := ps.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	for step := range 60 {
		if err := train.Record(); err != nil {
			t.Fatal(err)
		}
		if err := be.Do(sgd...); err != nil {
			t.Fatal(err)
		}
		if err := ps.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		if err := be.Sync(); err != nil {
			t.Fatal(err)
		}
		if step%20 == 0 {
			t.Logf("step %d: eval loss %.4f", step, evalLoss())
		}
	}
	after := evalLoss()
	t.Logf("loss %.4f -> %.4f", before, after)
	if !(after < 0.5*before) {
		t.Errorf("loss went from %.4f to %.4f: not learning", before, after)
	}
}
