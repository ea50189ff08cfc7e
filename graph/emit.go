package graph

import (
	"blip/gpu"
)

// emitCtx is what a node's emit function sees: the device view of every
// tensor of the plan, and whether the plan trains.
type emitCtx struct {
	views      map[*Tensor]gpu.View // roots
	training   bool
	dropoutOff bool
	lowParams  map[*Params]bool      // sets whose 16-bit weight copies the calls read
	readable   map[*Tensor]bool      // roots that hold their values after Run
	readers    map[*Tensor]int       // roots: how often nodes take them as inputs
	low        map[*Tensor]gpu.DType // roots stored in 16 bits (lowActivations)
}

// readBeyond reports whether t's memory is read by more than one node or
// after the run.
func (e *emitCtx) readBeyond(t *Tensor) bool {
	r, _ := t.root()
	return e.readable[r] || e.readers[r] > 1
}

// weight is the view of a matrix operand that may be read in reduced
// precision: the 16-bit copy of a parameter whose Params have one
// (Params.SetStorage), else the same as v.
func (e *emitCtx) weight(t *Tensor) gpu.View {
	r, off := t.root()
	if r.kind != kParam || r.param.ps.low == nil {
		return e.v(t)
	}
	ps := r.param.ps
	if e.lowParams == nil {
		e.lowParams = map[*Params]bool{}
	}
	e.lowParams[ps] = true
	return ps.lowView(r.param.value).Slice(off, int64(t.Numel()))
}

// halfProducts reports whether the products of a Linear with weight t run
// in half precision (gpu.Gemm.F16): t is a parameter whose Params keep an
// f16 copy (SetStorage(gpu.F16)), so that the plan is fp16 inference or
// fp16 mixed-precision training. Autocast runs all three products of such
// a layer in f16 (forward, dX, and dW from f16 copies of dY and X); with a
// bf16 copy the products stay fp32 arithmetic on bf16 weights.
func (e *emitCtx) halfProducts(t *Tensor) bool {
	r, _ := t.root()
	return r.kind == kParam && r.param.ps.low != nil && r.param.ps.low.dtype == gpu.F16
}

// has reports whether t has memory in this plan (a saved tensor of a
// no-grad plan has none).
func (e *emitCtx) has(t *Tensor) bool {
	r, _ := t.root()
	_, ok := e.views[r]
	return ok || r.kind == kParam || r.kind == kParamGrad
}

// v is the view of all of t.
func (e *emitCtx) v(t *Tensor) gpu.View { return e.vn(t, t.Numel()) }

// vn is the view of the first n elements of t (shared constants are sliced
// to what a call needs).
func (e *emitCtx) vn(t *Tensor, n int) gpu.View {
	r, off := t.root()
	rv, ok := e.views[r]
	switch r.kind {
	case kParam:
		rv, ok = r.param.value, true
	case kParamGrad:
		rv, ok = r.param.grad, true
	}
	if !ok {
		panic("graph: internal error: no memory for " + t.String())
	}
	dt := t.dtype
	if d, ok := e.low[r]; ok {
		dt = d
	}
	return gpu.View{Buf: rv.Buf, Off: rv.Off + off, Len: int64(n), DType: dt}
}

// addInto is dst += src, elementwise over dst.Len elements.
func addInto(dst, src gpu.View) gpu.Call {
	return gpu.Binary{Op: gpu.BinaryAdd, A: dst, B: src, C: dst, N: int(dst.Len)}
}

// zeroChunk is the length of the zero vectors zeroFill multiplies.
const zeroChunk = 1024

// zeroFill returns calls that set v to zero whatever it holds. Scaling by 0
// would keep NaNs and infinities (0*NaN is NaN); a Gemm of two zero vectors
// with Beta 0 does not read its output at all. zeros holds at least
// zeroChunk zeros.
func zeroFill(v gpu.View, zeros gpu.View) []gpu.Call {
	z := int(min(zeros.Len, 1<<20))
	n := int(v.Len)
	cols := min(n, zeroChunk, z)
	var calls []gpu.Call
	off := 0
	for cols > 0 && n-off >= cols {
		rows := min((n-off)/cols, z)
		calls = append(calls, gpu.Gemm{A: zeros.Slice(0, int64(rows)), B: zeros.Slice(0, int64(cols)),
			C: v.Slice(int64(off), int64(rows*cols)), M: rows, N: cols, K: 1})
		off += rows * cols
	}
	if rem := n - off; rem > 0 {
		calls = append(calls, gpu.Gemm{A: zeros.Slice(0, 1), B: zeros.Slice(0, int64(rem)),
			C: v.Slice(int64(off), int64(rem)), M: 1, N: rem, K: 1})
	}
	return calls
}

// colSum is the call y (+)= column sums of x (rows, cols), with its scratch
// (nil unless rows > gpu.ColumnBlock).
func colSum(e *emitCtx, x, y gpu.View, rows, cols int, scratch *Tensor, acc bool) gpu.Call {
	c := gpu.ColumnSum{X: x, Y: y, Rows: rows, Cols: cols, Accumulate: acc}
	if scratch != nil {
		c.Scratch = e.v(scratch)
	}
	return c
}
