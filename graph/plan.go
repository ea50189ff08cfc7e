package graph

import (
	"fmt"

	"blip/gpu"
)

// Plan is a compiled graph: memory for every tensor and the kernel calls of
// one step, recorded once. Run records all of them with one Backend.Do and
// waits with one Sync: no per-op submission, no host round trip inside a
// step, and no allocation when a plan runs again.
//
// Write inputs before Run (they keep their values between runs); read
// outputs, and the gradients of gradient inputs, after it. Parameter
// gradients accumulate in the Params' buffers.
type Plan struct {
	be        gpu.Backend
	g         *Graph
	training  bool
	bufs      []gpu.Buffer
	views     map[*Tensor]gpu.View // roots
	readable  map[*Tensor]bool     // roots that hold their values after Run
	gradOf    map[*Tensor]*Tensor
	calls     []gpu.Call
	lows      []*Params // whose 16-bit weight copies the calls read
	drops     []dropCall
	seed      uint64
	step      uint64
	stats     Stats
	closed    bool
	replay    gpu.Replay // the captured calls (replay.go)
	seeds     gpu.Buffer // the dropout keys of the current run (replay.go)
	salts     []uint64   // per seed-table slot
	seedBytes []byte     // the table's host copy, reused every run
}

// Stats describe a plan.
type Stats struct {
	Nodes       int   // forward and backward steps
	Calls       int   // kernel calls per run
	Buffers     int   // arena allocations
	ArenaBytes  int64 // device memory of the arenas
	TensorBytes int64 // the same tensors without memory reuse
	// LowActivations counts the activations stored in 16 bits
	// (Config.LowActivations).
	LowActivations int
}

type dropCall struct {
	call *gpu.Dropout
	salt uint64
	slot int // its key's place in the seed table
}

func newPlan(be gpu.Backend, g *Graph, cfg Config, fwd, bwd []*node, gradOf map[*Tensor]*Tensor) (*Plan, error) {
	p := &Plan{be: be, g: g, training: cfg.Loss != nil, views: map[*Tensor]gpu.View{},
		readable: map[*Tensor]bool{}, gradOf: gradOf}
	nodes := append(append([]*node(nil), fwd...), bwd...)
	end := len(nodes)
	var low map[*Tensor]gpu.DType
	if cfg.LowActivations {
		low = lowActivations(nodes, cfg, p.training)
	}
	dtypeOf := func(r *Tensor) gpu.DType {
		if d, ok := low[r]; ok {
			return d
		}
		return r.dtype
	}

	// Lifetimes of the roots the plan owns.
	blocks := map[*Tensor]*block{}
	touch := func(t *Tensor, step int) {
		r, _ := t.root()
		if r.kind == kParam || r.kind == kParamGrad {
			return
		}
		if _, bound := cfg.Bind[r]; bound {
			return
		}
		b := blocks[r]
		if b == nil {
			b = &block{root: r, size: alignUp(int64(r.Numel())*dtypeOf(r).Size(), blockAlign), first: step, last: step}
			blocks[r] = b
		}
		b.first, b.last = min(b.first, step), max(b.last, step)
	}
	for _, t := range g.tensors {
		if t.base == nil && (t.kind == kInput || t.kind == kConst) {
			touch(t, -1)
			touch(t, end)
			p.readable[t] = true
		}
	}
	for s, n := range nodes {
		for _, t := range n.tensors(p.training) {
			touch(t, s)
		}
	}
	keep := func(t *Tensor) {
		r, _ := t.root()
		if b := blocks[r]; b != nil {
			b.last = end
		}
		p.readable[r] = true
	}
	for _, t := range cfg.Outputs {
		keep(t)
	}
	if cfg.Loss != nil {
		keep(cfg.Loss)
	}
	for _, gt := range gradOf {
		keep(gt)
	}

	list := make([]*block, 0, len(blocks))
	for _, t := range g.tensors { // deterministic order
		if b := blocks[t]; b != nil {
			list = append(list, b)
			p.stats.TensorBytes += b.size
		}
	}
	sizes := place(list, bufferLimit(be))
	for _, sz := range sizes {
		buf, err := be.Alloc(sz)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("graph: plan of %d bytes in %d buffers: %w", sum(sizes), len(sizes), err)
		}
		p.bufs = append(p.bufs, buf)
		p.stats.ArenaBytes += sz
	}
	p.stats.Buffers = len(p.bufs)
	for _, b := range list {
		d := dtypeOf(b.root)
		p.views[b.root] = gpu.View{Buf: p.bufs[b.arena], Off: b.off / d.Size(), Len: int64(b.root.Numel()), DType: d}
	}
	for t, v := range cfg.Bind {
		p.views[t] = v
		p.readable[t] = true
	}
	for _, b := range list {
		if err := p.writeConst(b.root); err != nil {
			p.Close()
			return nil, err
		}
	}

	e := &emitCtx{views: p.views, training: p.training, dropoutOff: cfg.DropoutOff, readable: p.readable,
		readers: map[*Tensor]int{}, low: low}
	for _, n := range nodes {
		for _, t := range n.ins { // a node reading a tensor twice counts twice: the sum is then written
			r, _ := t.root()
			e.readers[r]++
		}
	}
	for _, n := range nodes {
		if n.emit == nil {
			continue
		}
		for _, c := range n.emit(e) {
			if err := c.Check(); err != nil {
				p.Close()
				return nil, fmt.Errorf("graph: %s: internal error: %w", n.name, err)
			}
			if d, ok := c.(*gpu.Dropout); ok {
				p.drops = append(p.drops, dropCall{call: d, salt: d.Seed})
			}
			p.calls = append(p.calls, c)
		}
	}
	if !p.training {
		p.calls = fuseNorms(p.calls)
	}
	if err := p.seedTable(); err != nil {
		p.Close()
		return nil, err
	}
	for ps := range e.lowParams {
		p.lows = append(p.lows, ps)
		if p.training {
			// The optimiser moves the master weights between steps.
			p.calls = append(ps.castCalls(), p.calls...)
		}
	}
	p.stats.LowActivations = len(low)
	p.stats.Nodes = len(nodes)
	p.stats.Calls = len(p.calls)
	return p, nil
}

// fuseNorms merges each Gemm that the next call, a LayerNorm, reads (a
// linear layer and the norm after it) into one gpu.GemmNorm, which a
// backend may run as one pass (Vulkan does for decoding's few rows).
func fuseNorms(calls []gpu.Call) []gpu.Call {
	out := make([]gpu.Call, 0, len(calls))
	for i := 0; i < len(calls); i++ {
		if i+1 < len(calls) {
			g, okG := calls[i].(gpu.Gemm)
			l, okL := calls[i+1].(gpu.LayerNorm)
			if gn := (gpu.GemmNorm{G: g, L: l}); okG && okL && gn.Check() == nil {
				out = append(out, gn)
				i++
				continue
			}
		}
		out = append(out, calls[i])
	}
	return out
}

func sum(s []int64) int64 {
	var n int64
	for _, v := range s {
		n += v
	}
	return n
}

func (p *Plan) writeConst(t *Tensor) error {
	if t.kind != kConst {
		return nil
	}
	v := p.views[t]
	var data []byte
	switch {
	case t.i32 != nil:
		data = i32Bytes(t.i32)
	case t.f32 != nil:
		data = f32Bytes(t.f32)
	default:
		f := make([]float32, t.Numel())
		for i := range f {
			f[i] = t.fill
		}
		data = f32Bytes(f)
	}
	return p.be.Write(v.Buf, v.ByteOff(), data)
}

// Stats returns the plan's size and memory figures.
func (p *Plan) Stats() Stats { return p.stats }

// Backend is the backend the plan runs on.
func (p *Plan) Backend() gpu.Backend { return p.be }

// SetSeed sets the seed dropout masks derive from; each Run after it draws
// new masks from (seed, runs since SetSeed, which dropout).
func (p *Plan) SetSeed(seed uint64) { p.seed, p.step = seed, 0 }

// Record records the step's kernel calls without waiting for them, so that
// further work (an optimiser step) joins the same submission; Backend.Sync
// then waits for all of it.
func (p *Plan) Record() error {
	if p.closed {
		return fmt.Errorf("graph: plan is closed")
	}
	p.step++
	if err := p.writeSeeds(); err != nil {
		return err
	}
	var refresh []gpu.Call
	for _, ps := range p.lows {
		if p.training {
			ps.MarkValuesChanged() // by the optimiser step that follows
			continue
		}
		refresh = append(refresh, ps.refreshCalls()...)
	}
	if p.replayable() {
		if len(refresh) > 0 {
			if err := p.be.Do(refresh...); err != nil {
				return err
			}
		}
		return p.recordReplay()
	}
	if len(refresh) > 0 {
		return p.be.Do(append(refresh, p.calls...)...)
	}
	return p.be.Do(p.calls...)
}

// Run executes one step: Record, then one Sync.
func (p *Plan) Run() error {
	if err := p.Record(); err != nil {
		return err
	}
	return p.be.Sync()
}

// Close frees the plan's memory. Params are not touched.
func (p *Plan) Close() {
	if p.replay != nil {
		p.replay.Free()
		p.replay = nil
	}
	if p.seeds != nil {
		p.be.Free(p.seeds)
		p.seeds = nil
	}
	for _, b := range p.bufs {
		p.be.Free(b)
	}
	p.bufs = nil
	p.calls = nil
	p.closed = true
}

// View returns the device view of t (an input, constant, output or
// gradient of this plan), for callers that produce or consume data on the
// device.
func (p *Plan) View(t *Tensor) (gpu.View, error) {
	if t == nil || t.g != p.g {
		return gpu.View{}, fmt.Errorf("graph: tensor %v is not of this plan's graph", t)
	}
	r, off := t.root()
	if r.kind == kParam {
		return r.param.value.Slice(off, int64(t.Numel())), nil
	}
	if r.kind == kParamGrad {
		return r.param.grad.Slice(off, int64(t.Numel())), nil
	}
	if p.closed {
		return gpu.View{}, fmt.Errorf("graph: plan is closed")
	}
	if !p.readable[r] {
		return gpu.View{}, fmt.Errorf("graph: %v is not an input, output or gradient of this plan (its memory is reused)", t)
	}
	rv := p.views[r]
	return gpu.View{Buf: rv.Buf, Off: rv.Off + off, Len: int64(t.Numel()), DType: t.dtype}, nil
}

// Grad is the gradient of a gradient input (Config.GradInputs), readable
// with ReadF32 after Run; nil for other tensors.
func (p *Plan) Grad(x *Tensor) *Tensor { return p.gradOf[x] }

func (p *Plan) io(t *Tensor, d gpu.DType, n int, b []byte, write bool) error {
	if t == nil {
		return fmt.Errorf("graph: nil tensor")
	}
	if t.dtype != d {
		return fmt.Errorf("graph: %v is %s, not %s", t, t.dtype, d)
	}
	if n != t.Numel() {
		return fmt.Errorf("graph: %v has %d elements, got %d", t, t.Numel(), n)
	}
	if write {
		if r, _ := t.root(); r.kind != kInput {
			return fmt.Errorf("graph: %v is not an input", t)
		}
	}
	v, err := p.View(t)
	if err != nil {
		return err
	}
	if write {
		return p.be.Write(v.Buf, v.ByteOff(), b)
	}
	return p.be.Read(v.Buf, v.ByteOff(), b)
}

// WriteF32 copies data into an f32 input.
func (p *Plan) WriteF32(t *Tensor, data []float32) error {
	return p.io(t, gpu.F32, len(data), f32Bytes(data), true)
}

// WriteI32 copies data into an i32 input.
func (p *Plan) WriteI32(t *Tensor, data []int32) error {
	return p.io(t, gpu.I32, len(data), i32Bytes(data), true)
}

// ReadF32 copies an f32 output (or input, constant, gradient) into dst.
func (p *Plan) ReadF32(t *Tensor, dst []float32) error {
	return p.io(t, gpu.F32, len(dst), f32Bytes(dst), false)
}

// ReadI32 copies an i32 output into dst.
func (p *Plan) ReadI32(t *Tensor, dst []int32) error {
	return p.io(t, gpu.I32, len(dst), i32Bytes(dst), false)
}

// dropoutSeed mixes the plan seed, the run and the dropout op into one
// 64-bit Philox key (splitmix64 finaliser over each part).
func dropoutSeed(seed, step, salt uint64) uint64 {
	mix := func(z uint64) uint64 {
		z += 0x9E3779B97F4A7C15
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		return z ^ z>>31
	}
	return mix(mix(mix(seed)^step) ^ salt)
}
