package paritytest

import (
	"strings"
	"testing"

	"blip/gpu"
)

// ErrorCase is a call that Backend.Do must refuse with an error naming the
// kernel.
type ErrorCase struct {
	Name   string
	Kernel string
	Build  func(e *Env) gpu.Call
}

// Env makes views for an ErrorCase: each in a zero-filled buffer of its own
// on the backend under test, or on another backend (Foreign).
type Env struct {
	t           *testing.T
	b, other    gpu.Backend
	bufs        []gpu.Buffer
	otherBufs   []gpu.Buffer
	usedForeign bool
}

func (e *Env) alloc(b gpu.Backend, d gpu.DType, n int, extra int) gpu.View {
	buf, err := b.Alloc(int64(n+extra) * d.Size())
	if err != nil {
		e.t.Fatalf("Alloc on %s: %v", b.Name(), err)
	}
	if b == e.b {
		e.bufs = append(e.bufs, buf)
	} else {
		e.otherBufs = append(e.otherBufs, buf)
	}
	return gpu.View{Buf: buf, Len: int64(n), DType: d}
}

// V is a view of n elements of type d.
func (e *Env) V(d gpu.DType, n int) gpu.View { return e.alloc(e.b, d, n, 0) }

// F32 is a view of n f32.
func (e *Env) F32(n int) gpu.View { return e.V(gpu.F32, n) }

// I32 is a view of n i32.
func (e *Env) I32(n int) gpu.View { return e.V(gpu.I32, n) }

// Outside is a view of n f32 that starts at element 2 of a buffer of n
// elements: its end lies outside the buffer.
func (e *Env) Outside(n int) gpu.View {
	v := e.F32(n)
	v.Off = 2
	return v
}

// Foreign is a view of n elements of type d on the other backend.
func (e *Env) Foreign(d gpu.DType, n int) gpu.View {
	e.usedForeign = true
	return e.alloc(e.other, d, n, 0)
}

func (e *Env) free() {
	for _, b := range e.bufs {
		e.b.Free(b)
	}
	for _, b := range e.otherBufs {
		e.other.Free(b)
	}
}

// ErrorCases returns the calls every backend must refuse.
func ErrorCases() []ErrorCase {
	gemm := func(e *Env) gpu.Gemm { // a valid 3x4 @ 4x5
		return gpu.Gemm{A: e.F32(12), B: e.F32(20), C: e.F32(15), M: 3, N: 5, K: 4}
	}
	cs := []ErrorCase{
		{"a_i32", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.A = e.I32(12); return g }},
		{"a_too_small", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.A = e.F32(11); return g }},
		{"a_outside_buffer", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.A = e.Outside(12); return g }},
		{"c_unset", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.C = gpu.View{}; return g }},
		{"c_too_small_for_batch", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.Batch = 2; g.StrideA, g.StrideB = 0, 0; return g }},
		{"c_batches_overlap", "gemm", func(e *Env) gpu.Call {
			g := gemm(e)
			g.Batch, g.C, g.StrideC = 2, e.F32(30), 5
			return g
		}},
		{"lda_lt_k", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.LdA = 3; return g }},
		{"ldc_lt_n_transb", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.TransB, g.LdC = true, 4; return g }},
		{"negative_stride", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.Batch, g.StrideA = 1, -1; return g }},
		{"negative_batch", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.Batch = -1; return g }},
		{"bias_short", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.Bias = e.F32(4); return g }},
		{"bad_act", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.Act = 7; return g }},
		{"m_zero", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.M = 0; return g }},
		{"a_foreign", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.A = e.Foreign(gpu.F32, 12); return g }},
		{"all_foreign", "gemm", func(e *Env) gpu.Call {
			return gpu.Gemm{A: e.Foreign(gpu.F32, 12), B: e.Foreign(gpu.F32, 20), C: e.Foreign(gpu.F32, 15), M: 3, N: 5, K: 4}
		}},

		{"scale_i32", "unary", func(e *Env) gpu.Call { return gpu.Unary{Op: gpu.UnaryScale, X: e.I32(4), Y: e.I32(4), N: 4} }},
		{"copy_f16", "unary", func(e *Env) gpu.Call { return gpu.Unary{X: e.V(gpu.F16, 4), Y: e.V(gpu.F16, 4), N: 4} }},
		{"copy_mixed_dtypes", "unary", func(e *Env) gpu.Call { return gpu.Unary{X: e.F32(4), Y: e.I32(4), N: 4} }},
		{"y_too_small", "unary", func(e *Env) gpu.Call { return gpu.Unary{Op: gpu.UnaryExp, X: e.F32(4), Y: e.F32(3), N: 4} }},
		{"n_zero", "unary", func(e *Env) gpu.Call { return gpu.Unary{X: e.F32(4), Y: e.F32(4)} }},
		{"bad_op", "unary", func(e *Env) gpu.Call { return gpu.Unary{Op: 99, X: e.F32(4), Y: e.F32(4), N: 4} }},
		{"all_foreign", "unary", func(e *Env) gpu.Call {
			return gpu.Unary{X: e.Foreign(gpu.F32, 4), Y: e.Foreign(gpu.F32, 4), N: 4}
		}},

		{"bn_not_dividing", "binary", func(e *Env) gpu.Call { return gpu.Binary{A: e.F32(10), B: e.F32(3), C: e.F32(10), N: 10, BN: 3} }},
		{"b_too_short", "binary", func(e *Env) gpu.Call { return gpu.Binary{A: e.F32(10), B: e.F32(4), C: e.F32(10), N: 10, BN: 5} }},
		{"c_i32", "binary", func(e *Env) gpu.Call { return gpu.Binary{A: e.F32(10), B: e.F32(10), C: e.I32(10), N: 10} }},
		{"bad_op", "binary", func(e *Env) gpu.Call { return gpu.Binary{Op: 9, A: e.F32(10), B: e.F32(10), C: e.F32(10), N: 10} }},
		{"b_foreign", "binary", func(e *Env) gpu.Call {
			return gpu.Binary{A: e.F32(10), B: e.Foreign(gpu.F32, 10), C: e.F32(10), N: 10}
		}},

		{"x_too_small", "reduce", func(e *Env) gpu.Call { return gpu.Reduce{X: e.F32(11), Y: e.F32(3), Rows: 3, Cols: 4} }},
		{"y_too_small", "reduce", func(e *Env) gpu.Call { return gpu.Reduce{X: e.F32(12), Y: e.F32(2), Rows: 3, Cols: 4} }},
		{"cols_zero", "reduce", func(e *Env) gpu.Call { return gpu.Reduce{X: e.F32(12), Y: e.F32(3), Rows: 3} }},
		{"bad_op", "reduce", func(e *Env) gpu.Call { return gpu.Reduce{Op: 5, X: e.F32(12), Y: e.F32(3), Rows: 3, Cols: 4} }},
		{"all_foreign", "reduce", func(e *Env) gpu.Call {
			return gpu.Reduce{X: e.Foreign(gpu.F32, 12), Y: e.Foreign(gpu.F32, 3), Rows: 3, Cols: 4}
		}},

		{"mask_too_small_for_group", "softmax", func(e *Env) gpu.Call {
			return gpu.Softmax{X: e.F32(20), Y: e.F32(20), Mask: e.F32(8), Rows: 5, Cols: 4, MaskGroup: 2}
		}},
		{"y_i32", "softmax", func(e *Env) gpu.Call { return gpu.Softmax{X: e.F32(20), Y: e.I32(20), Rows: 5, Cols: 4} }},
		{"negative_maskgroup", "softmax", func(e *Env) gpu.Call {
			return gpu.Softmax{X: e.F32(20), Y: e.F32(20), Mask: e.F32(20), Rows: 5, Cols: 4, MaskGroup: -1}
		}},
		{"mask_foreign", "softmax", func(e *Env) gpu.Call {
			return gpu.Softmax{X: e.F32(20), Y: e.F32(20), Mask: e.Foreign(gpu.F32, 20), Rows: 5, Cols: 4}
		}},
		{"all_foreign", "softmax", func(e *Env) gpu.Call {
			return gpu.Softmax{X: e.Foreign(gpu.F32, 20), Y: e.Foreign(gpu.F32, 20), Rows: 5, Cols: 4}
		}},

		{"eps_zero", "layernorm", func(e *Env) gpu.Call {
			return gpu.LayerNorm{X: e.F32(12), Y: e.F32(12), Gamma: e.F32(4), Beta: e.F32(4), Rows: 3, Cols: 4}
		}},
		{"gamma_short", "layernorm", func(e *Env) gpu.Call {
			return gpu.LayerNorm{X: e.F32(12), Y: e.F32(12), Gamma: e.F32(3), Beta: e.F32(4), Rows: 3, Cols: 4, Eps: 1e-5}
		}},
		{"beta_unset", "layernorm", func(e *Env) gpu.Call {
			return gpu.LayerNorm{X: e.F32(12), Y: e.F32(12), Gamma: e.F32(4), Rows: 3, Cols: 4, Eps: 1e-5}
		}},
		{"rstd_short", "layernorm", func(e *Env) gpu.Call {
			return gpu.LayerNorm{X: e.F32(12), Y: e.F32(12), Gamma: e.F32(4), Beta: e.F32(4), Rstd: e.F32(2), Rows: 3, Cols: 4, Eps: 1e-5}
		}},
		{"sum_without_residual", "layernorm", func(e *Env) gpu.Call {
			return gpu.LayerNorm{X: e.F32(12), Y: e.F32(12), Gamma: e.F32(4), Beta: e.F32(4), S: e.F32(12), Rows: 3, Cols: 4, Eps: 1e-5}
		}},
		{"residual_short", "layernorm", func(e *Env) gpu.Call {
			return gpu.LayerNorm{X: e.F32(12), Y: e.F32(12), Gamma: e.F32(4), Beta: e.F32(4), R: e.F32(11), Rows: 3, Cols: 4, Eps: 1e-5}
		}},
		{"sum_foreign", "layernorm", func(e *Env) gpu.Call {
			return gpu.LayerNorm{X: e.F32(12), Y: e.F32(12), Gamma: e.F32(4), Beta: e.F32(4), R: e.F32(12), S: e.Foreign(gpu.F32, 12),
				Rows: 3, Cols: 4, Eps: 1e-5}
		}},
		{"all_foreign", "layernorm", func(e *Env) gpu.Call {
			return gpu.LayerNorm{X: e.Foreign(gpu.F32, 12), Y: e.Foreign(gpu.F32, 12), Gamma: e.Foreign(gpu.F32, 4),
				Beta: e.Foreign(gpu.F32, 4), Rows: 3, Cols: 4, Eps: 1e-5}
		}},

		{"ids_f32", "embedding", func(e *Env) gpu.Call {
			return gpu.Embedding{Table: e.F32(20), Ids: e.F32(3), Y: e.F32(12), N: 3, Dim: 4, Vocab: 5}
		}},
		{"table_too_small", "embedding", func(e *Env) gpu.Call {
			return gpu.Embedding{Table: e.F32(19), Ids: e.I32(3), Y: e.F32(12), N: 3, Dim: 4, Vocab: 5}
		}},
		{"y_too_small", "embedding", func(e *Env) gpu.Call {
			return gpu.Embedding{Table: e.F32(20), Ids: e.I32(3), Y: e.F32(11), N: 3, Dim: 4, Vocab: 5}
		}},
		{"all_foreign", "embedding", func(e *Env) gpu.Call {
			return gpu.Embedding{Table: e.Foreign(gpu.F32, 20), Ids: e.Foreign(gpu.I32, 3), Y: e.Foreign(gpu.F32, 12), N: 3, Dim: 4, Vocab: 5}
		}},

		{"y_f32", "argmax", func(e *Env) gpu.Call { return gpu.ArgMax{X: e.F32(12), Y: e.F32(3), Rows: 3, Cols: 4} }},
		{"nll_i32", "argmax", func(e *Env) gpu.Call {
			return gpu.ArgMax{X: e.F32(12), Y: e.I32(3), NLL: e.I32(3), Rows: 3, Cols: 4}
		}},
		{"nll_too_small", "argmax", func(e *Env) gpu.Call {
			return gpu.ArgMax{X: e.F32(12), Y: e.I32(3), NLL: e.F32(2), Rows: 3, Cols: 4}
		}},
		{"rows_zero", "argmax", func(e *Env) gpu.Call { return gpu.ArgMax{X: e.F32(12), Y: e.I32(3), Cols: 4} }},
		{"x_too_small", "argmax", func(e *Env) gpu.Call { return gpu.ArgMax{X: e.F32(11), Y: e.I32(3), Rows: 3, Cols: 4} }},
		{"all_foreign", "argmax", func(e *Env) gpu.Call {
			return gpu.ArgMax{X: e.Foreign(gpu.F32, 12), Y: e.Foreign(gpu.I32, 3), Rows: 3, Cols: 4}
		}},

		{"k_gt_cols", "topk", func(e *Env) gpu.Call {
			return gpu.TopK{X: e.F32(12), Vals: e.F32(15), Idx: e.I32(15), Rows: 3, Cols: 4, K: 5}
		}},
		{"k_zero", "topk", func(e *Env) gpu.Call { return gpu.TopK{X: e.F32(12), Vals: e.F32(6), Idx: e.I32(6), Rows: 3, Cols: 4} }},
		{"idx_f32", "topk", func(e *Env) gpu.Call {
			return gpu.TopK{X: e.F32(12), Vals: e.F32(6), Idx: e.F32(6), Rows: 3, Cols: 4, K: 2}
		}},
		{"vals_too_small", "topk", func(e *Env) gpu.Call {
			return gpu.TopK{X: e.F32(12), Vals: e.F32(5), Idx: e.I32(6), Rows: 3, Cols: 4, K: 2}
		}},
		{"all_foreign", "topk", func(e *Env) gpu.Call {
			return gpu.TopK{X: e.Foreign(gpu.F32, 12), Vals: e.Foreign(gpu.F32, 6), Idx: e.Foreign(gpu.I32, 6), Rows: 3, Cols: 4, K: 2}
		}},

		{"not_a_permutation", "permute", func(e *Env) gpu.Call {
			return gpu.Permute{X: e.F32(24), Y: e.F32(24), Shape: [4]int{1, 2, 3, 4}, Perm: [4]int{0, 1, 1, 3}}
		}},
		{"perm_out_of_range", "permute", func(e *Env) gpu.Call {
			return gpu.Permute{X: e.F32(24), Y: e.F32(24), Shape: [4]int{1, 2, 3, 4}, Perm: [4]int{0, 1, 2, 4}}
		}},
		{"shape_zero", "permute", func(e *Env) gpu.Call {
			return gpu.Permute{X: e.F32(24), Y: e.F32(24), Shape: [4]int{0, 2, 3, 4}, Perm: [4]int{0, 1, 2, 3}}
		}},
		{"x_f16", "permute", func(e *Env) gpu.Call {
			return gpu.Permute{X: e.V(gpu.F16, 24), Y: e.V(gpu.F16, 24), Shape: [4]int{1, 2, 3, 4}, Perm: [4]int{0, 1, 3, 2}}
		}},
		{"mixed_dtypes", "permute", func(e *Env) gpu.Call {
			return gpu.Permute{X: e.F32(24), Y: e.I32(24), Shape: [4]int{1, 2, 3, 4}, Perm: [4]int{0, 1, 3, 2}}
		}},
		{"y_too_small", "permute", func(e *Env) gpu.Call {
			return gpu.Permute{X: e.I32(24), Y: e.I32(23), Shape: [4]int{1, 2, 3, 4}, Perm: [4]int{0, 1, 3, 2}}
		}},
		{"all_foreign", "permute", func(e *Env) gpu.Call {
			return gpu.Permute{X: e.Foreign(gpu.F32, 24), Y: e.Foreign(gpu.F32, 24), Shape: [4]int{1, 2, 3, 4}, Perm: [4]int{0, 1, 3, 2}}
		}},
	}
	for _, f := range registeredErrors {
		cs = append(cs, f()...)
	}
	return cs
}

// registeredErrors holds the error cases of other files (one file per group
// of kernels adds itself in init), as register does for Cases.
var registeredErrors []func() []ErrorCase

func registerErrors(f func() []ErrorCase) { registeredErrors = append(registeredErrors, f) }

// RunErrors checks that b.Do refuses every ErrorCase with an error that names
// the kernel, that a Do holding a valid call before an invalid one runs
// nothing, and that b still works afterwards. other is a second backend for
// the views of another backend (a second CPU backend will do); cases that
// need it are skipped when it is nil.
func RunErrors(t *testing.T, b, other gpu.Backend) {
	for _, c := range ErrorCases() {
		t.Run(c.Kernel+"/"+c.Name, func(t *testing.T) {
			e := &Env{t: t, b: b, other: other}
			defer e.free()
			if other == nil {
				e.other = b // built, then skipped
			}
			call := c.Build(e)
			if e.usedForeign && other == nil {
				t.Skip("no second backend")
			}
			if call.Kernel() != c.Kernel {
				t.Fatalf("case builds a %s call, but its kernel is %s", call.Kernel(), c.Kernel)
			}
			err := b.Do(call)
			if err == nil {
				b.Sync()
				t.Fatalf("%s %s: Do accepted an invalid call %+v", c.Kernel, c.Name, call)
			}
			if !strings.Contains(err.Error(), c.Kernel) {
				t.Errorf("%s %s: error %q does not name the kernel", c.Kernel, c.Name, err)
			}
			t.Logf("%v", err)
		})
	}

	t.Run("atomic_do", func(t *testing.T) {
		e := &Env{t: t, b: b, other: b}
		defer e.free()
		x, y := e.F32(4), e.F32(4)
		if err := b.Write(x.Buf, 0, wordsToBytes([]uint32{0x3f800000, 0x40000000, 0x40400000, 0x40800000}, 4)); err != nil {
			t.Fatal(err)
		}
		good := gpu.Unary{Op: gpu.UnaryCopy, X: x, Y: y, N: 4}
		bad := gpu.Unary{Op: gpu.UnaryCopy, X: x, Y: e.F32(3), N: 4}
		err := b.Do(good, bad)
		if err == nil {
			t.Fatalf("Do(valid, invalid) accepted the invalid unary call")
		}
		if !strings.Contains(err.Error(), "unary") {
			t.Errorf("error %q does not name the kernel", err)
		}
		if err := b.Sync(); err != nil {
			t.Fatalf("Sync after a refused Do: %v", err)
		}
		got := make([]byte, 16)
		if err := b.Read(y.Buf, 0, got); err != nil {
			t.Fatal(err)
		}
		for i, w := range bytesToWords(got, 4) {
			if w != 0 {
				t.Fatalf("Do(valid, invalid) ran the valid call: Y[%d] = %#x, want 0", i, w)
			}
		}
		// The backend still works.
		if err := b.Do(good); err != nil {
			t.Fatalf("valid call after a refused Do: %v", err)
		}
		if err := b.Read(y.Buf, 0, got); err != nil {
			t.Fatal(err)
		}
		if w := bytesToWords(got, 4); w[3] != 0x40800000 {
			t.Fatalf("valid call after a refused Do: Y = %#x", w)
		}
	})
}
