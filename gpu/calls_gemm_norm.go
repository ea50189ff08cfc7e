package gpu

// GemmNorm is a linear layer and the LayerNorm after it (a post-LN
// transformer block's output projection, residual add and norm; the LM
// head's transform and norm): exactly G, then L, where L reads G's result
// C as its X or as its residual R. A backend may run both in one pass
// (Vulkan does for decoding's few rows: the last workgroup of a block of
// rows to finish normalises them), which saves a dispatch and the barrier
// between the two; it computes what the two calls compute, to fp32
// summation order.
//
// G has one batch and writes C packed, (M, N); L normalises those M rows
// of N columns. L's other views must not overlap C, so that the one-pass
// form cannot read a normalised value where it expects G's; L's outputs
// may overlap G's A (memory a plan reuses once the product has read it).
type GemmNorm struct {
	G Gemm
	L LayerNorm
}

func init() { KernelNames = append(KernelNames, "gemm_norm") }

// Kernel implements Call.
func (GemmNorm) Kernel() string { return "gemm_norm" }

// CIsResidual reports whether L takes G's result as its residual R rather
// than as X (after Check).
func (c GemmNorm) CIsResidual() bool {
	n := int64(c.G.M) * int64(c.G.N)
	return c.L.X.Slice(0, n) != c.G.C.Slice(0, n)
}

// Check implements Call.
func (c GemmNorm) Check() error {
	const k = "gemm_norm"
	if err := checkParts(k, c.G, c.L); err != nil {
		return err
	}
	g, l := c.G, c.L
	if g.Batch > 1 {
		return shapeErr(k, "G has %d batches; one is supported", g.Batch)
	}
	if g.A.DType != F32 || l.Y.DType != F32 {
		// The one-pass kernels read and write f32 activations (decoding's).
		return shapeErr(k, "G.A is %s and L.Y %s: both must be f32", g.A.DType, l.Y.DType)
	}
	if g.LdC != 0 && g.LdC != g.N {
		return shapeErr(k, "G.LdC = %d: G must write C packed (LdC %d)", g.LdC, g.N)
	}
	if l.Rows != g.M || l.Cols != g.N {
		return shapeErr(k, "L normalises %dx%d, G writes %dx%d", l.Rows, l.Cols, g.M, g.N)
	}
	n := int64(g.M) * int64(g.N)
	cv := g.C.Slice(0, n)
	switch {
	case l.X.Slice(0, n) == cv:
		if l.R.Overlaps(cv) {
			return shapeErr(k, "L.R %v overlaps G.C %v", l.R, g.C)
		}
	case l.R.Buf != nil && l.R.Slice(0, n) == cv:
		if l.X.Overlaps(cv) {
			return shapeErr(k, "L.X %v overlaps G.C %v", l.X, g.C)
		}
	default:
		return shapeErr(k, "L reads neither X nor R from G.C %v (X %v, R %v)", g.C, l.X, l.R)
	}
	for _, o := range []struct {
		name string
		v    View
	}{{"Y", l.Y}, {"S", l.S}, {"Mean", l.Mean}, {"Rstd", l.Rstd}, {"Gamma", l.Gamma}, {"Beta", l.Beta}} {
		if o.v.Overlaps(cv) {
			return shapeErr(k, "L.%s %v overlaps G.C %v", o.name, o.v, g.C)
		}
	}
	return nil
}
