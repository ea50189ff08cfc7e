package gpu

// Reduced-precision storage. F16 and BF16 views hold values only: every
// kernel converts them to fp32 on load and accumulates in fp32. Weights
// stored in 16 bits halve the memory and the bandwidth of the products that
// read them (gpu.Gemm takes B in F16 or BF16); Cast makes such copies and
// brings results back. Half-precision arithmetic is asked for separately,
// per call (gpu.Gemm.F16, gpu.Attention.F16: operands rounded to f16, what
// tensor cores run).

func init() {
	KernelNames = append(KernelNames, "cast")
}

// Cast converts N elements: Y[i] = X[i] in Y's type, rounding to nearest
// even when narrowing (NaN stays NaN, overflow gives infinity). X and Y are
// F32, F16 or BF16, in any combination, and must not overlap unless they
// are the same view of the same type.
type Cast struct {
	X, Y View
	N    int
}

// Kernel implements Call.
func (Cast) Kernel() string { return "cast" }

// Check implements Call.
func (c Cast) Check() error {
	const k = "cast"
	if err := positive(k, "N", c.N); err != nil {
		return err
	}
	if !c.X.DType.IsFloat() {
		return shapeErr(k, "X is %s, want f32, f16 or bf16", c.X.DType)
	}
	if !c.Y.DType.IsFloat() {
		return shapeErr(k, "Y is %s, want f32, f16 or bf16", c.Y.DType)
	}
	if err := need(k, "X", c.X, c.X.DType, int64(c.N)); err != nil {
		return err
	}
	if err := need(k, "Y", c.Y, c.Y.DType, int64(c.N)); err != nil {
		return err
	}
	if c.X.Buf == c.Y.Buf && !(c.X.DType == c.Y.DType && c.X.Off == c.Y.Off) {
		xs, xe := c.X.ByteOff(), c.X.ByteOff()+int64(c.N)*c.X.DType.Size()
		ys, ye := c.Y.ByteOff(), c.Y.ByteOff()+int64(c.N)*c.Y.DType.Size()
		if xs < ye && ys < xe {
			return shapeErr(k, "X %v and Y %v overlap", c.X, c.Y)
		}
	}
	return sameBackend(k, c.X, c.Y)
}
