package graph

import (
	"fmt"

	"blip/gpu"
)

// Reduced-precision weight storage. With SetStorage(F16 or BF16) the set
// keeps a 16-bit copy of every value next to the fp32 one, and plans read
// linear-layer weights from it: half the bytes per product, accumulation
// still in fp32. Biases, LayerNorm and embeddings stay fp32.
//
// Under F16 a Linear's products are half precision (gpu.Gemm.F16), as
// autocast runs them and tensor cores compute them: they read their other
// operand (activations, gradients) rounded to f16 as well. Under BF16 that
// operand stays fp32 (the products are fp32 arithmetic on bf16 weights).
//
// In training the fp32 values are the master weights: the optimiser updates
// them, a training plan rewrites the copy from them at the start of every
// step (as autocast casts the weights in every forward), and the products
// of the forward pass and of the input gradients (dX = dY W) read the copy.
// Weight gradients are written and accumulated in fp32; under F16 their
// product dW = dY^T X reads dY and X rounded to f16 (the third of
// autocast's f16 products), so that gradients meet fp16's narrow range:
// why fp16 runs scale the loss (blip/pretrain, optim.Scaler). Activations
// and gradients are stored in fp32 throughout.
//
// An inference plan refreshes the copy before it runs when a Param.Write
// or a training step changed the values since the last refresh. Kernels
// that change values outside plans must be followed by MarkValuesChanged.

// lowPrecision is the 16-bit copy of a Params' values.
type lowPrecision struct {
	dtype gpu.DType
	bufs  []gpu.Buffer // one per value buffer, same element layout
	stale bool
}

// SetStorage selects the storage type of the weights inference plans read:
// gpu.F32 (the default), gpu.F16 or gpu.BF16. It must follow Alloc, and
// plans compiled before a change must be compiled again (their 16-bit copy
// is freed).
func (ps *Params) SetStorage(dt gpu.DType) error {
	if ps.be == nil {
		return fmt.Errorf("graph: SetStorage before Alloc")
	}
	if ps.low != nil && ps.low.dtype == dt {
		return nil
	}
	ps.freeLow()
	switch dt {
	case gpu.F32:
		return nil
	case gpu.F16, gpu.BF16:
	default:
		return fmt.Errorf("graph: weights cannot be stored as %s (want f32, f16 or bf16)", dt)
	}
	low := &lowPrecision{dtype: dt, stale: true}
	for _, v := range ps.vals {
		b, err := ps.be.Alloc(v.Bytes() / 2)
		if err != nil {
			for _, x := range low.bufs {
				ps.be.Free(x)
			}
			return fmt.Errorf("graph: %s copy of the weights: %w", dt, err)
		}
		low.bufs = append(low.bufs, b)
	}
	ps.low = low
	return nil
}

// Storage is the storage type SetStorage selected.
func (ps *Params) Storage() gpu.DType {
	if ps.low == nil {
		return gpu.F32
	}
	return ps.low.dtype
}

// MarkValuesChanged says that values were changed on the device by kernels
// (not by Param.Write), so that the 16-bit copy is refreshed before it is
// read next.
func (ps *Params) MarkValuesChanged() {
	if ps.low != nil {
		ps.low.stale = true
	}
}

func (ps *Params) freeLow() {
	if ps.low == nil {
		return
	}
	for _, b := range ps.low.bufs {
		ps.be.Free(b)
	}
	ps.low = nil
}

// lowView is the 16-bit copy of v, a view into one of the value buffers.
func (ps *Params) lowView(v gpu.View) gpu.View {
	for i, b := range ps.vals {
		if b == v.Buf {
			return gpu.View{Buf: ps.low.bufs[i], Off: v.Off, Len: v.Len, DType: ps.low.dtype}
		}
	}
	panic("graph: internal error: view is not in the parameter buffers")
}

// castCalls are the casts that rewrite the 16-bit copy from the values.
func (ps *Params) castCalls() []gpu.Call {
	var calls []gpu.Call
	for i, v := range ps.vals {
		n := v.Bytes() / 4
		calls = append(calls, gpu.Cast{X: gpu.Whole(v, gpu.F32).Slice(0, n), Y: gpu.View{Buf: ps.low.bufs[i], Len: n, DType: ps.low.dtype}, N: int(n)})
	}
	return calls
}

// refreshCalls returns the casts that rewrite a stale 16-bit copy (none
// when it is current) and marks it current: they must be recorded before
// anything that reads it.
func (ps *Params) refreshCalls() []gpu.Call {
	if ps.low == nil || !ps.low.stale {
		return nil
	}
	ps.low.stale = false
	return ps.castCalls()
}
