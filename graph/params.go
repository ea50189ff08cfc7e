package graph

import (
	"fmt"
	"unsafe"

	"blip/gpu"
)

// Params is a set of named parameters (the exact Hugging Face state-dict
// keys) with persistent device memory: their values and their gradients
// each live in one buffer (a few when they exceed a binding), so that an
// optimiser or a gradient-norm pass can treat all of them as one vector.
//
// Declare every parameter with New, then Alloc once. Gradients accumulate
// across runs of any number of plans until ZeroGrad, which is what gradient
// accumulation needs.
type Params struct {
	list      []*Param
	byName    map[string]*Param
	be        gpu.Backend
	vals      []gpu.Buffer
	grads     []gpu.Buffer
	zeros     gpu.Buffer
	zeroCalls []gpu.Call
	low       *lowPrecision // SetStorage's 16-bit copy of the values
}

// Param is one parameter: a name, a shape and, once allocated, a value and a
// gradient view.
type Param struct {
	name  string
	shape Shape
	// Frozen parameters get no gradient: a plan compiled while Frozen is
	// set neither computes nor accumulates theirs (gradients still flow
	// through them to the tensors they act on). Recompile after changing
	// it.
	Frozen bool
	ps     *Params
	index  int
	value  gpu.View
	grad   gpu.View
}

// NewParams returns an empty parameter set.
func NewParams() *Params {
	return &Params{byName: map[string]*Param{}}
}

// New declares a parameter. Names are unique; declaring after Alloc is an
// error.
func (ps *Params) New(name string, shape ...int) (*Param, error) {
	if ps.be != nil {
		return nil, fmt.Errorf("graph: param %q declared after Alloc", name)
	}
	if _, dup := ps.byName[name]; dup {
		return nil, fmt.Errorf("graph: param %q declared twice (use Get, or Alias for a tied name)", name)
	}
	if !Shape(shape).valid() {
		return nil, fmt.Errorf("graph: param %q: shape %v has a dimension <= 0", name, Shape(shape))
	}
	p := &Param{name: name, shape: Shape(shape).Clone(), ps: ps, index: len(ps.list)}
	ps.list = append(ps.list, p)
	ps.byName[name] = p
	return p, nil
}

// Alias registers another name for p (a tied weight that a checkpoint
// stores under two keys, such as the decoder's word embeddings and its
// output projection).
func (ps *Params) Alias(name string, p *Param) error {
	if q, dup := ps.byName[name]; dup && q != p {
		return fmt.Errorf("graph: param alias %q: the name belongs to another param", name)
	}
	if p == nil || p.ps != ps {
		return fmt.Errorf("graph: param alias %q: param of another set", name)
	}
	ps.byName[name] = p
	return nil
}

// Get returns the parameter of that name (or alias), or nil.
func (ps *Params) Get(name string) *Param { return ps.byName[name] }

// List returns the parameters in declaration order (aliases once).
func (ps *Params) List() []*Param { return ps.list }

// Names returns every name Get accepts, aliases included.
func (ps *Params) Names() []string {
	var s []string
	for n := range ps.byName {
		s = append(s, n)
	}
	return s
}

// Backend is the backend the set was allocated on, or nil.
func (ps *Params) Backend() gpu.Backend { return ps.be }

// Numel is the total number of parameter elements.
func (ps *Params) Numel() int64 {
	var n int64
	for _, p := range ps.list {
		n += int64(p.shape.Numel())
	}
	return n
}

// paramAlign is the alignment of each parameter in elements (256 bytes).
const paramAlign = 64

// Alloc gives every parameter zero-filled value and gradient memory on be.
func (ps *Params) Alloc(be gpu.Backend) error {
	if ps.be != nil {
		return fmt.Errorf("graph: params allocated twice")
	}
	limit := bufferLimit(be) / 4
	type chunk struct{ n int64 }
	var chunks []chunk
	where := make([][2]int64, len(ps.list)) // chunk, offset
	for i, p := range ps.list {
		n := int64(p.shape.Numel())
		if n > limit {
			return fmt.Errorf("graph: param %q of %d elements exceeds the %d-element buffer limit of %s", p.name, n, limit, be.Name())
		}
		if len(chunks) == 0 || chunks[len(chunks)-1].n+n > limit {
			chunks = append(chunks, chunk{})
		}
		c := &chunks[len(chunks)-1]
		where[i] = [2]int64{int64(len(chunks) - 1), c.n}
		c.n = alignUp(c.n+n, paramAlign)
	}
	free := func() {
		for _, b := range append(ps.vals, ps.grads...) {
			be.Free(b)
		}
		ps.vals, ps.grads = nil, nil
	}
	for _, c := range chunks {
		v, err := be.Alloc(max(c.n, 1) * 4)
		if err != nil {
			free()
			return fmt.Errorf("graph: params: %w", err)
		}
		ps.vals = append(ps.vals, v)
		gb, err := be.Alloc(max(c.n, 1) * 4)
		if err != nil {
			free()
			return fmt.Errorf("graph: param gradients: %w", err)
		}
		ps.grads = append(ps.grads, gb)
	}
	z, err := be.Alloc(zeroChunk * 4)
	if err != nil {
		free()
		return fmt.Errorf("graph: params: %w", err)
	}
	ps.zeros = z
	for i, p := range ps.list {
		c, off := where[i][0], where[i][1]
		n := int64(p.shape.Numel())
		p.value = gpu.View{Buf: ps.vals[c], Off: off, Len: n, DType: gpu.F32}
		p.grad = gpu.View{Buf: ps.grads[c], Off: off, Len: n, DType: gpu.F32}
	}
	zeros := gpu.Whole(z, gpu.F32)
	for _, b := range ps.grads {
		ps.zeroCalls = append(ps.zeroCalls, zeroFill(gpu.Whole(b, gpu.F32), zeros)...)
	}
	ps.be = be
	return nil
}

// Free releases the device memory; the set must not be used afterwards.
func (ps *Params) Free() {
	if ps.be == nil {
		return
	}
	ps.freeLow()
	for _, b := range append(append(ps.vals, ps.grads...), ps.zeros) {
		ps.be.Free(b)
	}
	ps.vals, ps.grads, ps.zeros, ps.zeroCalls = nil, nil, nil, nil
	for _, p := range ps.list {
		p.value, p.grad = gpu.View{}, gpu.View{}
	}
}

// ZeroGrad records calls that set every gradient to zero (NaNs included).
// Like a plan's calls they run in order with the backend's other work: call
// it before the first Run of an accumulation cycle; no Sync is needed.
func (ps *Params) ZeroGrad() error {
	if ps.be == nil {
		return fmt.Errorf("graph: ZeroGrad before Alloc")
	}
	return ps.be.Do(ps.zeroCalls...)
}

// ValueBuffers and GradBuffers return the whole value and gradient buffers
// (parameters lie in declaration order, each aligned to 64 elements, gaps
// zero), for optimisers that update all parameters in one call.
func (ps *Params) ValueBuffers() []gpu.Buffer { return ps.vals }

// GradBuffers: see ValueBuffers.
func (ps *Params) GradBuffers() []gpu.Buffer { return ps.grads }

// Name is the parameter's (first) name.
func (p *Param) Name() string { return p.name }

// Shape is the parameter's shape (do not modify).
func (p *Param) Shape() Shape { return p.shape }

// Numel is the number of elements.
func (p *Param) Numel() int { return p.shape.Numel() }

// Value is the device view of the value (invalid before Alloc).
func (p *Param) Value() gpu.View { return p.value }

// Operand is what a Linear's product reads for weight p, and whether the
// product is half precision (gpu.Gemm.F16): the set's 16-bit copy where it
// keeps one (Params.SetStorage), else the values, as plans use them. Plans
// refresh a stale copy before they run, so a call made outside plans that
// reads it must be recorded after a plan of the same set.
func (p *Param) Operand() (gpu.View, bool) {
	if p.ps.low == nil {
		return p.value, false
	}
	return p.ps.lowView(p.value), p.ps.low.dtype == gpu.F16
}

// Grad is the device view of the accumulated gradient.
func (p *Param) Grad() gpu.View { return p.grad }

func (p *Param) io(v gpu.View, data []float32, write bool) error {
	if p.ps.be == nil {
		return fmt.Errorf("graph: param %q is not allocated", p.name)
	}
	if int64(len(data)) != v.Len {
		return fmt.Errorf("graph: param %q %v has %d elements, got %d", p.name, p.shape, v.Len, len(data))
	}
	if write {
		if v == p.value {
			p.ps.MarkValuesChanged()
		}
		return p.ps.be.Write(v.Buf, v.ByteOff(), f32Bytes(data))
	}
	return p.ps.be.Read(v.Buf, v.ByteOff(), f32Bytes(data))
}

// Write copies data (row-major, p.Numel() elements) into the value.
func (p *Param) Write(data []float32) error { return p.io(p.value, data, true) }

// Read copies the value into data.
func (p *Param) Read(data []float32) error { return p.io(p.value, data, false) }

// ReadGrad copies the accumulated gradient into data.
func (p *Param) ReadGrad(data []float32) error { return p.io(p.grad, data, false) }

// WriteGrad overwrites the accumulated gradient (tests, gradient loading).
func (p *Param) WriteGrad(data []float32) error { return p.io(p.grad, data, true) }

// f32Bytes and i32Bytes view a slice as its bytes, without copying.
func f32Bytes(s []float32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*4)
}

func i32Bytes(s []int32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*4)
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// bufferLimit is the largest buffer the graph allocates on be: what one
// storage binding can span (kernels address whole views), at most 1 GiB
// when the backend does not say.
func bufferLimit(be gpu.Backend) int64 {
	if m := be.Info().MaxBindBytes; m > 0 {
		return m &^ 255
	}
	return 1 << 30
}
