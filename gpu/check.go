package gpu

import (
	"fmt"
)

// ShapeError is returned by Call.Check: it names the kernel and what is wrong.
type ShapeError struct {
	Kernel string
	Msg    string
}

func (e *ShapeError) Error() string { return e.Kernel + ": " + e.Msg }

func shapeErr(kernel, format string, args ...any) error {
	return &ShapeError{Kernel: kernel, Msg: fmt.Sprintf(format, args...)}
}

// need checks that v is a view of dtype d with at least n elements.
func need(kernel, name string, v View, d DType, n int64) error {
	if v.Buf == nil {
		return shapeErr(kernel, "%s is not set (needs %s[%d])", name, d, n)
	}
	if v.DType != d {
		return shapeErr(kernel, "%s is %s, want %s", name, v.DType, d)
	}
	if v.Len < n {
		return shapeErr(kernel, "%s has %d elements, needs %d", name, v.Len, n)
	}
	if v.Off < 0 || (v.Off+v.Len)*d.Size() > v.Buf.Bytes() {
		return shapeErr(kernel, "%s %v lies outside its buffer of %d bytes", name, v, v.Buf.Bytes())
	}
	return nil
}

// floatOr32 is d where it is a 16-bit float type, else F32 (so that need
// reports a wrong type against f32).
func floatOr32(d DType) DType {
	if d == F16 || d == BF16 {
		return d
	}
	return F32
}

// overlaps reports whether the first n elements of a and the first m of b
// share bytes.
func overlaps(a View, n int64, b View, m int64) bool {
	if a.Buf == nil || b.Buf == nil || a.Buf != b.Buf {
		return false
	}
	as, bs := a.ByteOff(), b.ByteOff()
	return as < bs+m*b.DType.Size() && bs < as+n*a.DType.Size()
}

func positive(kernel string, dims ...any) error {
	for i := 0; i+1 < len(dims); i += 2 {
		if n := dims[i+1].(int); n <= 0 {
			return shapeErr(kernel, "%s = %d, must be > 0", dims[i], n)
		}
	}
	return nil
}

// sameBackend checks that every set view lives on one backend.
// checkParts checks the calls a fused call is made of (GemmNorm's G and
// L, QueryAttention's P and A), an error naming the fused kernel first.
func checkParts(kernel string, parts ...Call) error {
	for _, c := range parts {
		if err := c.Check(); err != nil {
			return &ShapeError{Kernel: kernel, Msg: err.Error()}
		}
	}
	return nil
}

func sameBackend(kernel string, vs ...View) error {
	var owner Backend
	for _, v := range vs {
		if v.Buf == nil {
			continue
		}
		if owner == nil {
			owner = v.Buf.Owner()
		} else if v.Buf.Owner() != owner {
			return shapeErr(kernel, "views from different backends (%s and %s)", owner.Name(), v.Buf.Owner().Name())
		}
	}
	return nil
}

// Dims returns the effective batch, leading dimensions and batch strides.
func (g Gemm) Dims() (batch, lda, ldb, ldc int, sa, sb, sc int64) {
	batch = max(g.Batch, 1)
	lda, ldb, ldc = g.LdA, g.LdB, g.LdC
	if lda == 0 {
		lda = g.K
		if g.TransA {
			lda = g.M
		}
	}
	if ldb == 0 {
		ldb = g.N
		if g.TransB {
			ldb = g.K
		}
	}
	if ldc == 0 {
		ldc = g.N
	}
	sa, sb, sc = g.StrideA, g.StrideB, g.StrideC
	if sc == 0 {
		sc = int64(g.M) * int64(ldc)
	}
	return
}

// span is the number of elements a batch of row-major matrices covers.
func span(batch int, stride int64, rows, cols, ld int) int64 {
	return int64(batch-1)*stride + int64(rows-1)*int64(ld) + int64(cols)
}

// Check implements Call.
func (g Gemm) Check() error {
	const k = "gemm"
	if err := positive(k, "M", g.M, "N", g.N, "K", g.K); err != nil {
		return err
	}
	if g.Batch < 0 {
		return shapeErr(k, "Batch = %d", g.Batch)
	}
	batch, lda, ldb, ldc, sa, sb, sc := g.Dims()
	ar, ac := g.M, g.K
	if g.TransA {
		ar, ac = g.K, g.M
	}
	br, bc := g.K, g.N
	if g.TransB {
		br, bc = g.N, g.K
	}
	if lda < ac || ldb < bc || ldc < g.N {
		return shapeErr(k, "leading dimensions (%d, %d, %d) smaller than rows (%d, %d, %d)", lda, ldb, ldc, ac, bc, g.N)
	}
	if sa < 0 || sb < 0 || sc < 0 {
		return shapeErr(k, "negative batch stride")
	}
	// Batches of C may lie one after another, or side by side within each
	// row (attention heads written into (T, H*D)); anything else overlaps.
	stacked := sc >= int64(g.M-1)*int64(ldc)+int64(g.N)
	sideBySide := sc >= int64(g.N) && int64(batch-1)*sc+int64(g.N) <= int64(ldc)
	if batch > 1 && !stacked && !sideBySide {
		return shapeErr(k, "StrideC %d with LdC %d makes batches of C (%dx%d) overlap", sc, ldc, g.M, g.N)
	}
	desc := fmt.Sprintf("[%d] (%dx%d)@(%dx%d)", batch, g.M, g.K, g.K, g.N)
	// A, B and C may each be stored in 16 bits (B: weights; A and C:
	// activations); Bias is f32.
	at, bt, ct := floatOr32(g.A.DType), floatOr32(g.B.DType), floatOr32(g.C.DType)
	if g.F16 && (at == BF16 || bt == BF16) {
		// bf16 has 3 fewer mantissa bits and 3 more exponent bits than
		// f16: rounding it to f16 would change values, and no f16 product
		// of bf16 operands is what anyone asked for.
		return shapeErr(k, "F16 (half-precision products) with A or B in bf16: A and B must be f32 or f16")
	}
	if err := need(k, "A "+desc, g.A, at, span(batch, sa, ar, ac, lda)); err != nil {
		return err
	}
	if err := need(k, "B "+desc, g.B, bt, span(batch, sb, br, bc, ldb)); err != nil {
		return err
	}
	if err := need(k, "C "+desc, g.C, ct, span(batch, sc, g.M, g.N, ldc)); err != nil {
		return err
	}
	if ct != F32 {
		// A 16-bit C has its own memory: the kernels read A and B while
		// they write C in another element size.
		for _, o := range []struct {
			name string
			v    View
			n    int64
		}{{"A", g.A, span(batch, sa, ar, ac, lda)}, {"B", g.B, span(batch, sb, br, bc, ldb)}} {
			if overlaps(g.C, span(batch, sc, g.M, g.N, ldc), o.v, o.n) {
				return shapeErr(k, "C (%s) overlaps %s", ct, o.name)
			}
		}
	}
	if g.Bias.Buf != nil {
		if err := need(k, "Bias", g.Bias, F32, int64(g.N)); err != nil {
			return err
		}
	}
	if g.Act > ActTanh {
		return shapeErr(k, "unknown activation %d", g.Act)
	}
	return sameBackend(k, g.A, g.B, g.C, g.Bias)
}

// Check implements Call.
func (u Unary) Check() error {
	const k = "unary"
	if err := positive(k, "N", u.N); err != nil {
		return err
	}
	if u.Op > UnaryExp {
		return shapeErr(k, "unknown op %d", u.Op)
	}
	d := u.X.DType
	if d != F32 && !(u.Op == UnaryCopy && d == I32) {
		return shapeErr(k, "X is %s, want f32", d)
	}
	if err := need(k, "X", u.X, d, int64(u.N)); err != nil {
		return err
	}
	yt := d
	if d == F32 {
		yt = floatOr32(u.Y.DType) // a 16-bit activation
	}
	if err := need(k, "Y", u.Y, yt, int64(u.N)); err != nil {
		return err
	}
	if yt != d && overlaps(u.Y, int64(u.N), u.X, int64(u.N)) {
		return shapeErr(k, "Y (%s) overlaps X", yt)
	}
	return sameBackend(k, u.X, u.Y)
}

// Check implements Call.
func (b Binary) Check() error {
	const k = "binary"
	if err := positive(k, "N", b.N); err != nil {
		return err
	}
	if b.Op > BinaryDiv {
		return shapeErr(k, "unknown op %d", b.Op)
	}
	bn := b.BN
	if bn == 0 {
		bn = b.N
	}
	if bn < 0 || b.N%bn != 0 {
		return shapeErr(k, "BN = %d does not divide N = %d", b.BN, b.N)
	}
	if err := need(k, "A", b.A, F32, int64(b.N)); err != nil {
		return err
	}
	if err := need(k, "B", b.B, F32, int64(bn)); err != nil {
		return err
	}
	if err := need(k, "C", b.C, F32, int64(b.N)); err != nil {
		return err
	}
	return sameBackend(k, b.A, b.B, b.C)
}

// Check implements Call.
func (r Reduce) Check() error {
	const k = "reduce"
	if err := positive(k, "Rows", r.Rows, "Cols", r.Cols); err != nil {
		return err
	}
	if r.Op > ReduceMean {
		return shapeErr(k, "unknown op %d", r.Op)
	}
	if err := need(k, fmt.Sprintf("X (%dx%d)", r.Rows, r.Cols), r.X, F32, int64(r.Rows)*int64(r.Cols)); err != nil {
		return err
	}
	if err := need(k, "Y", r.Y, F32, int64(r.Rows)); err != nil {
		return err
	}
	return sameBackend(k, r.X, r.Y)
}

// Check implements Call.
func (s Softmax) Check() error {
	const k = "softmax"
	if err := positive(k, "Rows", s.Rows, "Cols", s.Cols); err != nil {
		return err
	}
	n := int64(s.Rows) * int64(s.Cols)
	if err := need(k, fmt.Sprintf("X (%dx%d)", s.Rows, s.Cols), s.X, F32, n); err != nil {
		return err
	}
	if err := need(k, "Y", s.Y, F32, n); err != nil {
		return err
	}
	if s.MaskGroup < 0 {
		return shapeErr(k, "MaskGroup = %d", s.MaskGroup)
	}
	if s.Mask.Buf != nil {
		g := max(s.MaskGroup, 1)
		rows := (s.Rows + g - 1) / g
		if err := need(k, fmt.Sprintf("Mask (%dx%d)", rows, s.Cols), s.Mask, F32, int64(rows)*int64(s.Cols)); err != nil {
			return err
		}
	}
	return sameBackend(k, s.X, s.Y, s.Mask)
}

// Check implements Call.
func (l LayerNorm) Check() error {
	const k = "layernorm"
	if err := positive(k, "Rows", l.Rows, "Cols", l.Cols); err != nil {
		return err
	}
	if !(l.Eps > 0) {
		return shapeErr(k, "Eps = %g, must be > 0", l.Eps)
	}
	n := int64(l.Rows) * int64(l.Cols)
	if err := need(k, fmt.Sprintf("X (%dx%d)", l.Rows, l.Cols), l.X, F32, n); err != nil {
		return err
	}
	yt := floatOr32(l.Y.DType)
	if err := need(k, "Y", l.Y, yt, n); err != nil {
		return err
	}
	if yt != F32 {
		// A 16-bit Y (the input of half-precision products) aliases
		// nothing: the statistics' passes read X and R after Y's first
		// elements are written.
		for _, o := range []struct {
			name string
			v    View
		}{{"X", l.X}, {"R", l.R}, {"S", l.S}} {
			if o.v.Buf != nil && overlaps(l.Y, n, o.v, n) {
				return shapeErr(k, "Y (%s) overlaps %s", yt, o.name)
			}
		}
	}
	if l.R.Buf != nil {
		if err := need(k, "R", l.R, F32, n); err != nil {
			return err
		}
	}
	if l.S.Buf != nil {
		if l.R.Buf == nil {
			return shapeErr(k, "S (the sum X + R) is set without R")
		}
		if err := need(k, "S", l.S, F32, n); err != nil {
			return err
		}
	}
	if err := need(k, "Gamma", l.Gamma, F32, int64(l.Cols)); err != nil {
		return err
	}
	if err := need(k, "Beta", l.Beta, F32, int64(l.Cols)); err != nil {
		return err
	}
	for _, o := range []struct {
		name string
		v    View
	}{{"Mean", l.Mean}, {"Rstd", l.Rstd}} {
		if o.v.Buf != nil {
			if err := need(k, o.name, o.v, F32, int64(l.Rows)); err != nil {
				return err
			}
		}
	}
	return sameBackend(k, l.X, l.Y, l.Gamma, l.Beta, l.Mean, l.Rstd, l.R, l.S)
}

// Check implements Call.
func (e Embedding) Check() error {
	const k = "embedding"
	if err := positive(k, "N", e.N, "Dim", e.Dim, "Vocab", e.Vocab); err != nil {
		return err
	}
	if err := need(k, fmt.Sprintf("Table (%dx%d)", e.Vocab, e.Dim), e.Table, F32, int64(e.Vocab)*int64(e.Dim)); err != nil {
		return err
	}
	if err := need(k, "Ids", e.Ids, I32, int64(e.N)); err != nil {
		return err
	}
	if err := need(k, fmt.Sprintf("Y (%dx%d)", e.N, e.Dim), e.Y, F32, int64(e.N)*int64(e.Dim)); err != nil {
		return err
	}
	return sameBackend(k, e.Table, e.Ids, e.Y)
}

// Check implements Call.
func (a ArgMax) Check() error {
	const k = "argmax"
	if err := positive(k, "Rows", a.Rows, "Cols", a.Cols); err != nil {
		return err
	}
	if err := need(k, fmt.Sprintf("X (%dx%d)", a.Rows, a.Cols), a.X, F32, int64(a.Rows)*int64(a.Cols)); err != nil {
		return err
	}
	if err := need(k, "Y", a.Y, I32, int64(a.Rows)); err != nil {
		return err
	}
	if a.NLL.Buf != nil {
		if err := need(k, "NLL", a.NLL, F32, int64(a.Rows)); err != nil {
			return err
		}
	}
	return sameBackend(k, a.X, a.Y, a.NLL)
}

// Check implements Call.
func (t TopK) Check() error {
	const k = "topk"
	if err := positive(k, "Rows", t.Rows, "Cols", t.Cols, "K", t.K); err != nil {
		return err
	}
	if t.K > t.Cols {
		return shapeErr(k, "K = %d exceeds Cols = %d", t.K, t.Cols)
	}
	if err := need(k, fmt.Sprintf("X (%dx%d)", t.Rows, t.Cols), t.X, F32, int64(t.Rows)*int64(t.Cols)); err != nil {
		return err
	}
	if err := need(k, "Vals", t.Vals, F32, int64(t.Rows)*int64(t.K)); err != nil {
		return err
	}
	if err := need(k, "Idx", t.Idx, I32, int64(t.Rows)*int64(t.K)); err != nil {
		return err
	}
	return sameBackend(k, t.X, t.Vals, t.Idx)
}

// Check implements Call.
func (p Permute) Check() error {
	const k = "permute"
	n := int64(1)
	seen := [4]bool{}
	for i := 0; i < 4; i++ {
		if p.Shape[i] <= 0 {
			return shapeErr(k, "Shape %v has a dimension <= 0", p.Shape)
		}
		n *= int64(p.Shape[i])
		if p.Perm[i] < 0 || p.Perm[i] > 3 || seen[p.Perm[i]] {
			return shapeErr(k, "Perm %v is not a permutation of 0..3", p.Perm)
		}
		seen[p.Perm[i]] = true
	}
	d := p.X.DType
	if d != F32 && d != I32 {
		return shapeErr(k, "X is %s, want f32 or i32", d)
	}
	if err := need(k, fmt.Sprintf("X %v", p.Shape), p.X, d, n); err != nil {
		return err
	}
	if err := need(k, "Y", p.Y, d, n); err != nil {
		return err
	}
	return sameBackend(k, p.X, p.Y)
}

// OutShape is the shape of Y.
func (p Permute) OutShape() [4]int {
	var s [4]int
	for i := range s {
		s[i] = p.Shape[p.Perm[i]]
	}
	return s
}
