package blip

import (
	"fmt"

	"blip/gpu"
	"blip/graph"
)

// kvStepper is the captioning decoder behind generate.Stepper with a
// key/value cache, as transformers decodes: each step feeds only the new
// tokens and attends over cached keys and values that never leave the
// device.
//
// Where things live (all device buffers, H = text hidden size, L layers,
// N1 = image tokens):
//
//   - the Model's cross plan's output: every image's cross-attention keys and values,
//     (items, 2L, N1, H) (k of layer 0, v of layer 0, k of layer 1, ...),
//     computed once per image by one plan run. Rows are not given copies
//     (transformers expands them per beam): the cross-attention is
//     unmasked and not causal, so the queries of the consecutive rows of
//     one image are independent queries of one batch element over that
//     image's keys (one gpu.Attention per run of rows, or one for all when
//     the runs are regular), and a Reorder moves nothing here.
//   - self[0]: the self-attention keys and values of the tokens so far,
//     (rowsCap, 2L, cap, H) with the first length positions in use; self[1]
//     is the spare that a reorder gathers into.
//
// The decoder between attentions runs as a chain of 2L+1 compiled plans per
// (rows, new tokens): embeddings; then per layer the self-attention output
// block, and the cross output block and FFN (or, after the last layer, the
// LM head on the last position). Between two plans the stepper records
// the calls whose shapes depend on the cache length, or on which rows
// belong to which image, directly on the backend: the query, key and value
// projections of the new tokens, the query into the plan's input for it
// and the key and value straight into their cache slots (qkvCalls:
// adjacent products of one A, which Vulkan runs as one dispatch), the
// fused attention (gpu.Attention with strided K/V views over the cache, Tk
// = length + new) writing into the next plan's input; and the
// cross-attention with its query projection (crossCalls:
// gpu.QueryAttention, one dispatch on Vulkan). The residual stream needs
// no copy: each plan's "hidden" input is bound to the previous plan's
// output (graph.Config.Bind).
// The graph has no op that reads a tensor of variable length or writes at
// a run-time offset, hence the chain: plans never depend on the length, so
// a step compiles nothing once its (rows, new tokens) has been seen, and
// no capacity is wasted on attention over unused slots.
//
// A step uploads one i32 vector (the new ids and their positions), records
// everything without waiting, syncs once and downloads the last position's
// logits (rows, vocab). Reorders are deferred to the next step, where they
// become one Copy2D per moved row (all layers at once).
type kvStepper struct {
	m      *Model
	be     gpu.Backend
	items  int
	n1     int // image tokens (N+1)
	h      int // text hidden size
	heads  int
	layers int
	hint   int // initial self-cache capacity in tokens

	crossKV gpu.View // (items, 2L, N1, H), the output of the Model's cross plan

	self    [2]gpu.Buffer // (rowsCap, 2L, cap, H)
	rowsCap int
	cap     int

	// pick: -Inf values, picked or ranked tokens (i32), their -log p or
	// the rows' log-sum-exps, ranked logits, each row's best token;
	// pickRows values each (Picker, Ranker).
	pick     [5]gpu.Buffer
	pickRows int

	rows    int
	length  int   // tokens cached per row
	item    []int // per row: its image
	pending []int // reorder to apply at the next step: row i <- row pending[i]
}

// decChain is the chain of plans of one (rows, new tokens) shape.
type decChain struct {
	rows, tq int
	segs     []*decSeg
	in       *graph.Tensor // segs[0]: ids then positions, i32 (rows*tq + tq)
}

// decSeg is one plan of the chain. Every segment but the first reads the
// attention result a and the residual x; every one but the last writes the
// residual xo and holds the memory of the next attention's queries q (an
// input that qkvCalls or crossCalls write).
type decSeg struct {
	plan               *graph.Plan
	a, x, xo, q        gpu.View
	ta, tx, txo, tq, o *graph.Tensor // o: the logits (last segment)
}

// newKVStepper computes every image's cross-attention keys and values from
// images (items, N+1, Cv) in host memory and keeps them on the device.
// capHint is the longest sequence expected (prompt included); the cache
// grows past it if needed.
func newKVStepper(m *Model, be gpu.Backend, images []float32, items, capHint int) (*kvStepper, error) {
	v := &m.Config.VisionConfig
	if items <= 0 || len(images) != items*v.NumPositions()*v.HiddenSize {
		return nil, fmt.Errorf("blip: %d image-state values for %d images of %dx%d", len(images), items, v.NumPositions(), v.HiddenSize)
	}
	return newKVStepperFrom(m, be, items, capHint, func(cp *planSlot) error { return cp.plan.WriteF32(cp.in, images) })
}

// newKVStepperOn is newKVStepper with the image states in src, a view on
// be (a vision plan's output, possibly still being computed): they are
// copied on the device, never through host memory.
func newKVStepperOn(m *Model, be gpu.Backend, src gpu.View, items, capHint int) (*kvStepper, error) {
	v := &m.Config.VisionConfig
	n := int64(items * v.NumPositions() * v.HiddenSize)
	if items <= 0 || src.DType != gpu.F32 || src.Len < n {
		return nil, fmt.Errorf("blip: image-state view %s for %d images of %dx%d", src, items, v.NumPositions(), v.HiddenSize)
	}
	return newKVStepperFrom(m, be, items, capHint, func(cp *planSlot) error {
		dst, err := cp.plan.View(cp.in)
		if err != nil {
			return err
		}
		return be.Do(gpu.Copy2D{X: src.Slice(0, n), Y: dst, Rows: items * v.NumPositions(), Cols: v.HiddenSize})
	})
}

// newKVStepperFrom builds the stepper; load fills the cross plan's input
// with the image states before its run.
func newKVStepperFrom(m *Model, be gpu.Backend, items, capHint int, load func(cp *planSlot) error) (*kvStepper, error) {
	t := &m.Config.TextConfig
	v := &m.Config.VisionConfig
	s := &kvStepper{m: m, be: be, items: items, n1: v.NumPositions(), h: t.HiddenSize, heads: t.NumAttentionHeads,
		layers: len(m.TextDecoder.Bert.Layers), hint: max(capHint, 1)}
	if s.h%s.heads != 0 || s.h/s.heads > gpu.MaxAttentionHeadDim {
		return nil, fmt.Errorf("blip: KV cache: hidden size %d over %d heads is not supported", s.h, s.heads)
	}
	cp, err := m.cross.get(be, items, func() (*graph.Plan, *graph.Tensor, *graph.Tensor, error) {
		g := graph.New()
		img := g.Input("image_states", gpu.F32, items, v.NumPositions(), v.HiddenSize)
		var kvs []*graph.Tensor
		for i, l := range m.TextDecoder.Bert.Layers {
			if l.CrossAttention == nil {
				return nil, nil, nil, fmt.Errorf("blip: KV cache: layer %d has no cross-attention", i)
			}
			end := g.Scope(fmt.Sprintf("text_decoder.layer.%d.crossattention", i))
			k, v := l.CrossAttention.KeyValue(g, img)
			kvs = append(kvs, k, v)
			end()
		}
		out := g.Concat(1, kvs...)
		if err := g.Err(); err != nil {
			return nil, nil, nil, err
		}
		p, err := g.Compile(be, graph.Config{Outputs: []*graph.Tensor{out}, DropoutOff: true})
		return p, img, out, err
	})
	if err != nil {
		return nil, err
	}
	if err := load(cp); err != nil {
		return nil, err
	}
	if err := cp.plan.Run(); err != nil {
		return nil, err
	}
	if s.crossKV, err = cp.plan.View(cp.out); err != nil {
		return nil, err
	}
	return s, nil
}

func (c *decChain) close() {
	for _, sg := range c.segs {
		sg.plan.Close()
	}
}

// close releases the stepper's cross cache and self cache; the decoder
// chains stay cached on the Model.
func (s *kvStepper) close() {
	s.freeRows()
	s.freePick()
}

func (s *kvStepper) freeRows() {
	for _, b := range s.self {
		if b != nil {
			s.be.Free(b)
		}
	}
	s.self = [2]gpu.Buffer{}
	s.rowsCap, s.cap = 0, 0
}

// crossItem and selfRow are the f32 elements of one image of the cross
// cache and of one row of the self cache.
func (s *kvStepper) crossItem() int { return 2 * s.layers * s.n1 * s.h }
func (s *kvStepper) selfRow() int   { return 2 * s.layers * s.cap * s.h }

// alloc makes the self cache hold rows rows of capacity c tokens; its
// contents are lost.
func (s *kvStepper) alloc(rows, c int) error {
	s.freeRows()
	s.rowsCap, s.cap = rows, c
	var err error
	for i := range s.self {
		if s.self[i], err = s.be.Alloc(int64(rows*s.selfRow()) * 4); err != nil {
			s.freeRows()
			return err
		}
	}
	return nil
}

// grow raises the self-cache capacity to at least need tokens, keeping the
// cached positions (one strided copy, then a sync before the old buffer
// goes).
func (s *kvStepper) grow(need int) error {
	if need <= s.cap {
		return nil
	}
	c := max(2*s.cap, need)
	old, oldCap := s.self[0], s.cap
	nb, err := s.be.Alloc(int64(s.rowsCap*2*s.layers*c*s.h) * 4)
	if err != nil {
		return err
	}
	if s.length > 0 {
		// Rows of the old cache are (row, slot) pairs of oldCap tokens; a
		// pending reorder still reads the physical rows, so all move.
		err = s.be.Do(gpu.Copy2D{X: gpu.Whole(old, gpu.F32), Y: gpu.Whole(nb, gpu.F32), Rows: s.rowsCap * 2 * s.layers,
			Cols: s.length * s.h, LdX: oldCap * s.h, LdY: c * s.h})
		if err == nil {
			err = s.be.Sync()
		}
		if err != nil {
			s.be.Free(nb)
			return err
		}
	}
	spare, err := s.be.Alloc(int64(s.rowsCap*2*s.layers*c*s.h) * 4)
	if err != nil {
		s.be.Free(nb)
		return err
	}
	s.be.Free(old)
	s.be.Free(s.self[1])
	s.self, s.cap = [2]gpu.Buffer{nb, spare}, c
	return nil
}

// Start implements generate.Stepper.
func (s *kvStepper) Start(prompts [][]int32, copies int) ([]float32, error) {
	ids, tq, err := s.start(prompts, copies)
	if err != nil {
		return nil, err
	}
	return s.run(ids, tq)
}

// start checks the prompts, resets the rows (allocating the cache if
// needed) and returns the prompts' ids and length.
func (s *kvStepper) start(prompts [][]int32, copies int) ([]int32, int, error) {
	rows := len(prompts)
	if rows == 0 || copies <= 0 {
		return nil, 0, fmt.Errorf("blip: start with %d prompts and %d copies", rows, copies)
	}
	tq := len(prompts[0])
	ids := make([]int32, 0, rows*tq)
	s.item = make([]int, rows)
	for i, p := range prompts {
		if len(p) != tq || tq == 0 {
			return nil, 0, fmt.Errorf("blip: prompt %d has %d tokens, prompt 0 has %d", i, len(p), tq)
		}
		s.item[i] = i / copies
		if s.item[i] >= s.items {
			return nil, 0, fmt.Errorf("blip: row %d conditions on image %d of %d", i, s.item[i], s.items)
		}
		ids = append(ids, p...)
	}
	if rows > s.rowsCap || s.cap < tq {
		if err := s.alloc(max(rows, s.rowsCap), max(s.hint, tq, s.cap)); err != nil {
			return nil, 0, err
		}
	}
	s.rows, s.length, s.pending = rows, 0, nil
	return ids, tq, nil
}

// Step implements generate.Stepper.
func (s *kvStepper) Step(tokens []int32) ([]float32, error) {
	if err := s.stepCheck(tokens); err != nil {
		return nil, err
	}
	return s.run(tokens, 1)
}

func (s *kvStepper) stepCheck(tokens []int32) error {
	if s.rows == 0 {
		return fmt.Errorf("blip: step before start")
	}
	if len(tokens) != s.rows {
		return fmt.Errorf("blip: %d tokens for %d rows", len(tokens), s.rows)
	}
	return nil
}

// Reorder implements generate.Stepper. The cache rows move at the next
// step, on the device.
func (s *kvStepper) Reorder(src []int) error {
	if len(src) == 0 || len(src) > s.rowsCap {
		return fmt.Errorf("blip: reorder to %d rows (1 to the %d rows started)", len(src), s.rowsCap)
	}
	item := make([]int, len(src))
	for i, r := range src {
		if r < 0 || r >= s.rows {
			return fmt.Errorf("blip: reorder row %d of %d", r, s.rows)
		}
		item[i] = s.item[r]
	}
	p := append([]int(nil), src...)
	if s.pending != nil {
		for i, r := range src {
			p[i] = s.pending[r]
		}
	}
	s.item, s.pending, s.rows = item, p, len(src)
	return nil
}

// reorderCalls gathers the self-cache rows of the pending reorder.
func (s *kvStepper) reorderCalls() []gpu.Call {
	var calls []gpu.Call
	src := s.pending
	s.pending = nil
	if src != nil && s.length > 0 {
		identity, inPlace := true, true
		for i, r := range src {
			identity = identity && r == i
			// Moving rows towards the front in order never overwrites a
			// row still to be read.
			inPlace = inPlace && r >= i && (i == 0 || r > src[i-1])
		}
		row := s.selfRow()
		slots := 2 * s.layers
		copyRow := func(from, to gpu.Buffer, r, i int) {
			calls = append(calls, gpu.Copy2D{
				X: gpu.Whole(from, gpu.F32).Slice(int64(r*row), int64(row)), Y: gpu.Whole(to, gpu.F32).Slice(int64(i*row), int64(row)),
				Rows: slots, Cols: s.length * s.h, LdX: s.cap * s.h, LdY: s.cap * s.h})
		}
		switch {
		case identity:
		case inPlace:
			for i, r := range src {
				if r != i {
					copyRow(s.self[0], s.self[0], r, i)
				}
			}
		default:
			for i, r := range src {
				copyRow(s.self[0], s.self[1], r, i)
			}
			s.self[0], s.self[1] = s.self[1], s.self[0]
		}
	}
	return calls
}

// crossCalls returns the cross-attention of layer l, its queries
// projected from the hidden states x into q and its results into o, all
// (rows, tq, H): gpu.QueryAttention, which Vulkan runs as the split
// attention's dispatch alone for decoding's few queries (each workgroup
// projecting its head's queries), with the weights as plans read them
// (graph.Param.Operand, as in qkvCalls). Each run of consecutive rows of
// one image is one batch element of n*tq queries over the image's keys;
// runs of equal length whose images are evenly spaced are one call (the
// usual case: every image with its beams or return sequences, in order).
func (s *kvStepper) crossCalls(l, tq int, x, q, o gpu.View) []gpu.Call {
	type run struct{ row, n, item int }
	var runs []run
	for i, it := range s.item[:s.rows] {
		if len(runs) > 0 && runs[len(runs)-1].item == it {
			runs[len(runs)-1].n++
		} else {
			runs = append(runs, run{row: i, n: 1, item: it})
		}
	}
	item := int64(s.crossItem())
	// kv is the keys (which 0) or values (1) of b images from image it on,
	// step images apart: exactly the span the call reads, so that no
	// binding is larger than needed.
	kv := func(it, which, b, step int) gpu.View {
		off := int64(it)*item + int64((2*l+which)*s.n1*s.h)
		return s.crossKV.Slice(off, int64(b-1)*int64(step)*item+int64(s.n1*s.h))
	}
	shape := gpu.AttentionShape{B: 1, H: s.heads, Tq: runs[0].n * tq, Tk: s.n1, D: s.h / s.heads}
	regular, step := true, 1
	if len(runs) > 1 {
		step = runs[1].item - runs[0].item
	}
	for i, r := range runs {
		regular = regular && r.n == runs[0].n && r.item == runs[0].item+i*step
	}
	lin := &s.m.TextDecoder.Bert.Layers[l].CrossAttention.Query
	w, half := lin.Weight.Operand()
	// call projects and attends the rows [from, from+n) as shape asks.
	call := func(from, n int, shape gpu.AttentionShape, k, v gpu.View) gpu.Call {
		off, m := int64(from*tq*s.h), int64(n*tq*s.h)
		qs := q.Slice(off, m)
		return gpu.QueryAttention{
			P: gpu.Gemm{A: x.Slice(off, m), B: w, Bias: lin.Bias.Value(), C: qs, M: n * tq, N: s.h, K: s.h, TransB: true, F16: half},
			A: gpu.Attention{Q: qs, K: k, V: v, O: o.Slice(off, m), AttentionShape: shape},
		}
	}
	if regular && step > 0 {
		shape.B, shape.KBatch, shape.VBatch = len(runs), int64(step)*item, int64(step)*item
		k, v := kv(runs[0].item, 0, len(runs), step), kv(runs[0].item, 1, len(runs), step)
		return []gpu.Call{call(0, s.rows, shape, k, v)}
	}
	calls := make([]gpu.Call, len(runs))
	for i, r := range runs {
		shape.Tq = r.n * tq
		calls[i] = call(r.row, r.n, shape, kv(r.item, 0, 1, 1), kv(r.item, 1, 1, 1))
	}
	return calls
}

// run feeds tq new tokens per row (ids, rows*tq) at positions length.. and
// returns the logits after each row's last one.
func (s *kvStepper) run(ids []int32, tq int) ([]float32, error) {
	last, err := s.record(ids, gpu.View{}, tq)
	if err != nil {
		return nil, err
	}
	if err := s.be.Sync(); err != nil {
		return nil, err
	}
	s.length += tq
	out := make([]float32, s.rows*s.m.Config.TextConfig.VocabSize)
	if err := last.plan.ReadF32(last.o, out); err != nil {
		return nil, err
	}
	return out, nil
}

// record records a step of tq new tokens per row (ids, rows*tq) at
// positions length.. without waiting, and returns the chain's last
// segment, whose output will hold the logits. With ids nil the step's
// tokens are dev, one per row (tq 1), i32 on the device (the previous
// step's picks): its embeddings are then embedCalls', which read them
// where they lie.
func (s *kvStepper) record(ids []int32, dev gpu.View, tq int) (*decSeg, error) {
	rows := s.rows
	if np := s.m.Config.TextConfig.MaxPositionEmbeddings; s.length+tq > np {
		return nil, fmt.Errorf("blip: %d tokens exceed the %d positions of the decoder", s.length+tq, np)
	}
	c, err := s.chain(rows, tq)
	if err != nil {
		return nil, err
	}
	if err := s.grow(s.length + tq); err != nil {
		return nil, err
	}
	if ids != nil {
		in := append(make([]int32, 0, len(ids)+tq), ids...)
		for i := range tq {
			in = append(in, int32(s.length+i))
		}
		if err := c.segs[0].plan.WriteI32(c.in, in); err != nil {
			return nil, err
		}
	}
	// Nothing below waits until the Sync.
	if err := s.be.Do(s.reorderCalls()...); err != nil {
		return nil, err
	}
	d := s.h / s.heads
	tk := s.length + tq
	self := gpu.Whole(s.self[0], gpu.F32)
	ld := 2 * s.layers * s.cap * s.h // between rows of the self cache
	// slot returns positions [from, to) of slot (2l: keys of layer l,
	// 2l+1: its values) of every row: exactly the span a call touches.
	slot := func(sl, from, to int) gpu.View {
		return self.Slice(int64((sl*s.cap+from)*s.h), int64((rows-1)*ld+(to-from)*s.h))
	}
	for l := 0; l < s.layers; l++ {
		sa, sm, sc := c.segs[2*l], c.segs[2*l+1], c.segs[2*l+2]
		if l == 0 && ids == nil {
			err = s.be.Do(s.embedCalls(dev, sa.xo)...)
		} else {
			err = sa.plan.Record()
		}
		if err != nil {
			return nil, err
		}
		selfShape := gpu.AttentionShape{B: rows, H: s.heads, Tq: tq, Tk: tk, D: d, Causal: true,
			KBatch: int64(ld), VBatch: int64(ld)}
		calls := append(s.qkvCalls(l, sa.xo, sa.q, slot(2*l, s.length, tk), slot(2*l+1, s.length, tk), rows, tq, ld),
			gpu.Attention{Q: sa.q, K: slot(2*l, 0, tk), V: slot(2*l+1, 0, tk), O: sm.a, AttentionShape: selfShape})
		err := s.be.Do(calls...)
		if err == nil {
			err = sm.plan.Record()
		}
		if err == nil {
			err = s.be.Do(s.crossCalls(l, tq, sm.xo, sm.q, sc.a)...)
		}
		if err != nil {
			return nil, err
		}
	}
	last := c.segs[len(c.segs)-1]
	if err := last.plan.Record(); err != nil {
		return nil, err
	}
	return last, nil
}

// embedCalls embed one new token per row, ids (rows) i32 on the device,
// at position length into x (rows, H), the embeddings plan's output: its
// word gather, position add and LayerNorm as direct calls, so that the
// ids are read where the previous step's picks lie and the position is
// picked here, without copies into the plan's input. The same kernels
// on the same values: the same bits as the plan.
func (s *kvStepper) embedCalls(ids, x gpu.View) []gpu.Call {
	e := s.m.TextDecoder.Bert.Embeddings
	rows, h := s.rows, s.h
	x = x.Slice(0, int64(rows*h))
	pos := e.Position.Value().Slice(int64(s.length*h), int64(h))
	return []gpu.Call{
		gpu.Embedding{Table: e.Word.Value(), Ids: ids, Y: x, N: rows, Dim: h, Vocab: s.m.Config.TextConfig.VocabSize},
		gpu.Binary{Op: gpu.BinaryAdd, A: x, B: pos, C: x, N: rows * h, BN: h},
		gpu.LayerNorm{X: x, Y: x, Gamma: e.LayerNorm.Weight.Value(), Beta: e.LayerNorm.Bias.Value(), Rows: rows, Cols: h, Eps: e.LayerNorm.Eps},
	}
}

// qkvCalls project layer l's self-attention queries, keys and values of
// the new tokens x (rows, tq, H): the queries into q (the plan input the
// attention reads), the keys and values straight into their cache slots k
// and v (rows ld apart, tq positions each), the products a plan would run
// (its weights as plans read them, graph.Param.Operand: the cross plan of
// newKVStepperFrom, of the same Params, refreshed a stale 16-bit copy
// before any step): no copy from a plan's output. The three read one A and
// write disjoint memory, so Vulkan runs them as one dispatch where they
// take its few-row kernel.
func (s *kvStepper) qkvCalls(l int, x, q, k, v gpu.View, rows, tq, ld int) []gpu.Call {
	a := &s.m.TextDecoder.Bert.Layers[l].Attention
	var calls []gpu.Call
	for _, p := range []struct {
		lin *Linear
		c   gpu.View
		ld  int
	}{{&a.Query, q, s.h}, {&a.Key, k, ld}, {&a.Value, v, ld}} {
		w, half := p.lin.Weight.Operand()
		g := gpu.Gemm{A: x, B: w, Bias: p.lin.Bias.Value(), C: p.c, M: rows, N: s.h, K: s.h, TransB: true, LdC: p.ld, F16: half}
		if tq > 1 {
			// One batch element per row: tq positions, then the next row.
			g.Batch, g.M, g.StrideA, g.LdC, g.StrideC = rows, tq, int64(tq*s.h), 0, int64(p.ld)
			if p.ld == s.h {
				g.StrideC = int64(tq * s.h) // the queries, packed
			}
		}
		calls = append(calls, g)
	}
	return calls
}

// chain returns the plans of shape (rows, tq), compiling them the first
// time.
func (s *kvStepper) chain(rows, tq int) (*decChain, error) {
	key := chainKey{s.be, rows, tq}
	if c := s.m.decChains[key]; c != nil {
		return c, nil
	}
	c := &decChain{rows: rows, tq: tq}
	dec := s.m.TextDecoder
	layers := dec.Bert.Layers
	fail := func(err error) (*decChain, error) {
		for _, sg := range c.segs {
			sg.plan.Close()
		}
		return nil, err
	}
	for i := 0; i < 2*s.layers+1; i++ {
		g := graph.New()
		sg := &decSeg{}
		var x *graph.Tensor
		if i == 0 {
			c.in = g.Input("ids_positions", gpu.I32, rows*tq+tq)
			ids := g.Reshape(g.Slice(c.in, 0, 0, rows*tq), rows, tq)
			pos := g.Slice(c.in, 0, rows*tq, rows*tq+tq)
			end := g.Scope("text_decoder")
			x = dec.Bert.Embeddings.ForwardAt(g, ids, pos)
			end()
		} else {
			sg.ta = g.Input("attention", gpu.F32, rows, tq, s.h)
			sg.tx = g.Input("hidden", gpu.F32, rows, tq, s.h)
			l := (i - 1) / 2
			end := g.Scope(fmt.Sprintf("text_decoder.layer.%d", l))
			if i%2 == 1 {
				x = layers[l].Attention.Output(g, sg.ta, sg.tx)
			} else {
				x = layers[l].FeedForward(g, layers[l].CrossAttention.Output(g, sg.ta, sg.tx))
			}
			end()
		}
		var outs []*graph.Tensor
		switch {
		case i == 2*s.layers:
			if tq > 1 {
				x = g.Slice(x, 1, tq-1, tq)
			}
			sg.o = g.Reshape(dec.Head.Forward(g, x), rows, s.m.Config.TextConfig.VocabSize)
			outs = []*graph.Tensor{sg.o}
		default:
			// The next attention's queries: a self-attention's are
			// qkvCalls', a cross-attention's crossCalls' (projected from
			// txo); the plan holds their memory.
			sg.txo, sg.tq = x, g.Input("query", gpu.F32, rows, tq, s.h)
			outs = []*graph.Tensor{sg.txo}
		}
		if err := g.Err(); err != nil {
			return fail(err)
		}
		cfg := graph.Config{Outputs: outs, DropoutOff: true}
		if i > 0 {
			// The residual stream stays where the previous plan wrote it.
			cfg.Bind = map[*graph.Tensor]gpu.View{sg.tx: c.segs[i-1].xo}
		}
		p, err := g.Compile(s.be, cfg)
		if err != nil {
			return fail(err)
		}
		sg.plan = p
		c.segs = append(c.segs, sg)
		for _, b := range []struct {
			t *graph.Tensor
			v *gpu.View
		}{{sg.ta, &sg.a}, {sg.tx, &sg.x}, {sg.txo, &sg.xo}, {sg.tq, &sg.q}} {
			if b.t == nil {
				continue
			}
			if *b.v, err = p.View(b.t); err != nil {
				return fail(err)
			}
		}
	}
	if s.m.decChains == nil {
		s.m.decChains = map[chainKey]*decChain{}
	}
	s.m.decChains[key] = c
	return c, nil
}
