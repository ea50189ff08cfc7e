package gpu

import (
	"fmt"
	"math"
)

// The training kernels: the backward passes of the forward kernels of
// calls.go, the loss, dropout, the optimiser update and the copies and
// reductions that gradients need. Conventions as in calls.go: row-major,
// packed unless a leading dimension says otherwise, fp32 arithmetic.
//
// Gradients of parameters (DGamma, DBeta, DBias, DTable, ColumnSum with
// Accumulate) are added to what their views hold, so that the gradients of
// a parameter used several times add up; zero them before the first use.
// Every reduction across rows runs in an order fixed by the shapes alone, so
// a call gives the same bits on every run (there are no float atomics).

func init() {
	KernelNames = append(KernelNames, "layernorm_bwd", "softmax_bwd", "act_bwd", "embedding_bwd",
		"cross_entropy", "dropout", "l2norm", "l2norm_bwd", "adamw", "colsum", "copy2d")
}

// ColumnBlock is the number of rows each partial sum of a two-stage column
// reduction covers. The column reductions (ColumnSum, LayerNormBackward's
// DGamma and DBeta, ActBackward's DBias) sum each block of ColumnBlock rows
// into one row of partial sums, in row order, and then the partial rows, in
// order; with at most ColumnBlock rows the first stage writes the result
// directly and no scratch is needed. Otherwise the call's Scratch view ends
// holding the partial sums: row p of (ColumnScratchLen/cols) rows is the
// sum over rows [p*ColumnBlock, (p+1)*ColumnBlock).
const ColumnBlock = 32

// ColumnScratchLen is the number of f32 elements of scratch a two-stage
// column reduction of a (rows, cols) matrix needs: one row of cols partial
// sums per block of ColumnBlock rows, or 0 when rows <= ColumnBlock.
func ColumnScratchLen(rows, cols int) int64 {
	if rows <= ColumnBlock {
		return 0
	}
	return int64((rows+ColumnBlock-1)/ColumnBlock) * int64(cols)
}

// LayerNormBackward is the backward pass of LayerNorm: with xhat = (X -
// Mean) * Rstd per row and g = DY * Gamma,
//
//	DX = Rstd * (g - mean(g) - xhat * mean(g * xhat))   (means over the row)
//	DGamma[c] += sum over rows of DY[r, c] * xhat[r, c]
//	DBeta[c]  += sum over rows of DY[r, c]
//
// Mean and Rstd are LayerNorm's optional outputs for the same X. DX is
// overwritten and may alias DY. DGamma and DBeta are optional (a LayerNorm
// without trainable parameters). When either is set and Rows > ColumnBlock,
// Scratch must hold 2*ColumnScratchLen(Rows, Cols) f32 elements: its first
// half receives the DGamma partial sums and its second half the DBeta ones
// (see ColumnBlock; the half of an unset gradient is left alone).
type LayerNormBackward struct {
	X, DY, DX     View // (Rows, Cols)
	Gamma         View // (Cols)
	Mean, Rstd    View // (Rows)
	DGamma, DBeta View // optional, (Cols), accumulated into
	Scratch       View
	Rows, Cols    int
}

// Kernel implements Call.
func (LayerNormBackward) Kernel() string { return "layernorm_bwd" }

// SoftmaxBackward is the backward pass of Softmax given its output Y:
//
//	DX[r, :] = Scale * Y[r, :] * (DY[r, :] - sum(DY[r, :] * Y[r, :]))
//
// Scale is the forward call's Scale (0 means 1); the forward Mask needs no
// gradient (masked entries have Y = 0). DX may alias DY or Y.
type SoftmaxBackward struct {
	Y, DY, DX  View // (Rows, Cols)
	Rows, Cols int
	Scale      float32
}

// Kernel implements Call.
func (SoftmaxBackward) Kernel() string { return "softmax_bwd" }

// ActBackward is the backward pass of an activation, elementwise over the
// Rows*Cols elements:
//
//	DX = DY * act'(X)
//
// for ActGELU (exact erf GELU: act'(x) = Phi(x) + x*phi(x)), ActTanh
// (1 - tanh(x)^2) and ActNone (DX = DY). X is the activation's input; with
// FromOutput it is the activation's output Y instead, which suffices for
// ActTanh (act' = 1 - Y^2) and ActNone but not for ActGELU. DX may alias DY
// or X.
//
// Fused bias gradient: for a Gemm with Bias and Act, dZ = DY * act'(Z) is
// also the gradient of the Bias summed over rows. With DBias set the kernel
// adds the column sums of DX to DBias in the same pass over the data
// (deterministic, as ColumnSum; Scratch must then hold
// ColumnScratchLen(Rows, Cols) elements when Rows > ColumnBlock). X must be
// the pre-activation Z = Alpha*A@B + Bias for ActGELU: Gemm does not keep it,
// so a training forward runs the Gemm with ActNone into Z and applies the
// GELU with Unary (keeping Z); for ActTanh the Gemm output itself does, with
// FromOutput.
type ActBackward struct {
	Act        Act
	X, DY, DX  View // (Rows, Cols)
	DBias      View // optional, (Cols), accumulated into
	Scratch    View
	Rows, Cols int
	FromOutput bool
}

// Kernel implements Call.
func (ActBackward) Kernel() string { return "act_bwd" }

// EmbeddingBackward is the backward pass of Embedding:
//
//	DTable[Ids[i], :] += DY[i, :]   for i = 0, 1, ..., N-1 in order
//
// Ids outside [0, Vocab) are skipped. The additions to each table row happen
// in the order of i, so the result is the same on every run and backend.
type EmbeddingBackward struct {
	DY, Ids, DTable View // DY (N, Dim), Ids (N) int32, DTable (Vocab, Dim)
	N, Dim, Vocab   int
}

// Kernel implements Call.
func (EmbeddingBackward) Kernel() string { return "embedding_bwd" }

// CrossEntropy is the fused softmax cross-entropy over the rows of Logits
// (Rows, Cols) against int32 class Labels (Rows), with label smoothing as
// torch.nn.functional.cross_entropy: with p = softmax(Logits[r, :]) and
// eps = Smoothing,
//
//	Loss[r] = (1-eps) * -log p[y] + eps * mean over c of -log p[c]
//	DLogits[r, c] = Scale * (p[c] - (1-eps)*[c == y] - eps/Cols)
//
// A row whose label lies outside [0, Cols) (PyTorch's ignore_index -100 in
// particular) gets Loss 0 and a zero gradient row. Loss is per row and not
// scaled; Scale (0 means 1) multiplies DLogits only, so that a mean
// reduction's 1/(number of non-ignored rows) can be folded in. Loss and
// DLogits are both optional (not both unset); DLogits may alias Logits.
type CrossEntropy struct {
	Logits, Labels View // (Rows, Cols) f32, (Rows) i32
	Loss           View // optional, (Rows)
	DLogits        View // optional, (Rows, Cols)
	Rows, Cols     int
	Smoothing      float32 // in [0, 1)
	Scale          float32
}

// Kernel implements Call.
func (CrossEntropy) Kernel() string { return "cross_entropy" }

// Dropout computes Y[i] = X[i] * keep(i) / (1-P) for i < N, where keep(i) is
// drawn from a counter-based generator: word i%4 of Philox4x32-10 with key
// (Seed low 32 bits, Seed high 32 bits) at counter (i/4 low, i/4 high, 0, 0)
// is compared with DropoutThreshold (dropped when below it). The mask
// depends on (Seed, i) only, so it is bit-identical on every backend, and
// the backward pass is the same call on DY with the same Seed. P = 0 copies
// X bit for bit. Y may alias X.
type Dropout struct {
	X, Y View // (N)
	N    int
	P    float32 // drop probability in [0, 1)
	Seed uint64
	// Seeds, when set, holds the key instead of Seed: I32 words (Seed low
	// 32 bits, Seed high 32 bits) at its first two elements, read when the
	// call runs. A call list can then be recorded once and replayed with a
	// new seed written there for every run (graph.Plan does).
	Seeds View
}

// Kernel implements Call.
func (Dropout) Kernel() string { return "dropout" }

// Threshold is the 32-bit random word below which an element is dropped:
// floor(P * 2^32).
func (d Dropout) Threshold() uint32 {
	return uint32(math.Floor(float64(d.P) * (1 << 32)))
}

// KeepScale is the factor kept elements are multiplied by: 1/(1-P) rounded
// to f32.
func (d Dropout) KeepScale() float32 {
	return float32(1 / (1 - float64(d.P)))
}

// L2Normalize normalises each row of X (Rows, Cols) as
// torch.nn.functional.normalize: Y = X / max(||X[r, :]||, Eps). Y may alias
// X. Eps > 0 (torch's default 1e-12).
type L2Normalize struct {
	X, Y       View // (Rows, Cols)
	Rows, Cols int
	Eps        float32
}

// Kernel implements Call.
func (L2Normalize) Kernel() string { return "l2norm" }

// L2NormalizeBackward is the backward pass of L2Normalize given its input X:
// with n = ||X[r, :]||,
//
//	DX = (DY - X * (X . DY) / n^2) / n   where n >= Eps
//	DX = DY / Eps                          where n < Eps
//
// DX may alias DY.
type L2NormalizeBackward struct {
	X, DY, DX  View // (Rows, Cols)
	Rows, Cols int
	Eps        float32
}

// Kernel implements Call.
func (L2NormalizeBackward) Kernel() string { return "l2norm_bwd" }

// AdamW is one step of torch.optim.AdamW on N fp32 master weights, in place:
//
//	g = GradScale * Grad                  (GradScale 0 means 1)
//	Param *= 1 - LR*WeightDecay           (decoupled weight decay, first)
//	M = Beta1*M + (1-Beta1)*g
//	V = Beta2*V + (1-Beta2)*g*g
//	Param -= LR/BiasCorrection1 * M / (sqrt(V)/sqrt(BiasCorrection2) + Eps)
//
// with BiasCorrection1 = 1 - Beta1^t and BiasCorrection2 = 1 - Beta2^t for
// step t >= 1, in (0, 1] (pass 1 for no correction). Grad is only read.
type AdamW struct {
	Param, Grad, M, V                View // (N)
	N                                int
	LR, Beta1, Beta2, Eps            float32
	WeightDecay                      float32
	BiasCorrection1, BiasCorrection2 float32
	GradScale                        float32
}

// Kernel implements Call.
func (AdamW) Kernel() string { return "adamw" }

// Scalars returns the scalars of the update as both backends compute them:
// the weight-decay factor 1 - LR*WeightDecay, the step size
// LR/BiasCorrection1, sqrt(BiasCorrection2) and the gradient scale, each
// computed in float64 and rounded to f32.
func (a AdamW) Scalars() (decay, step, bc2sqrt, gscale float32) {
	gs := a.GradScale
	if gs == 0 {
		gs = 1
	}
	return float32(1 - float64(a.LR)*float64(a.WeightDecay)),
		float32(float64(a.LR) / float64(a.BiasCorrection1)),
		float32(math.Sqrt(float64(a.BiasCorrection2))), gs
}

// ColumnSum sums the rows of X (Rows, Cols):
//
//	Y[c] = sum over r of X[r, c]    (Y[c] += ... with Accumulate)
//
// in two stages through Scratch (ColumnScratchLen(Rows, Cols) elements that
// receive the partial sums; unused when Rows <= ColumnBlock): the bias
// gradient of a linear layer.
type ColumnSum struct {
	X, Y       View // (Rows, Cols), (Cols)
	Scratch    View
	Rows, Cols int
	Accumulate bool
}

// Kernel implements Call.
func (ColumnSum) Kernel() string { return "colsum" }

// Copy2D copies a strided block of Rows x Cols elements:
//
//	Y[r*LdY + c] = X[r*LdX + c]     (Y[...] += X[...] with Accumulate)
//
// LdX and LdY are row strides (0 means Cols): slicing column blocks out of a
// fused matrix (q, k, v of a (T, 3D) projection), writing them back side by
// side, and adding the gradients of slices. Elements between rows of Y are
// left alone. X and Y must not overlap. f32, or i32 without Accumulate
// (copied bit for bit).
type Copy2D struct {
	X, Y       View
	Rows, Cols int
	LdX, LdY   int
	Accumulate bool
}

// Kernel implements Call.
func (Copy2D) Kernel() string { return "copy2d" }

// Lds returns the effective row strides.
func (c Copy2D) Lds() (ldx, ldy int) {
	ldx, ldy = c.LdX, c.LdY
	if ldx == 0 {
		ldx = c.Cols
	}
	if ldy == 0 {
		ldy = c.Cols
	}
	return
}

// ---- checks ----------------------------------------------------------------

func matDesc(name string, rows, cols int) string {
	return fmt.Sprintf("%s (%dx%d)", name, rows, cols)
}

// needScratch checks the scratch of a column reduction that needs n
// elements (none when n is 0).
func needScratch(kernel string, v View, n int64, rows, cols int) error {
	if n == 0 {
		return nil
	}
	return need(kernel, fmt.Sprintf("Scratch for %d rows of %d columns", rows, cols), v, F32, n)
}

// Check implements Call.
func (l LayerNormBackward) Check() error {
	const k = "layernorm_bwd"
	if err := positive(k, "Rows", l.Rows, "Cols", l.Cols); err != nil {
		return err
	}
	n := int64(l.Rows) * int64(l.Cols)
	for _, o := range []struct {
		name string
		v    View
		n    int64
	}{
		{matDesc("X", l.Rows, l.Cols), l.X, n}, {"DY", l.DY, n}, {"DX", l.DX, n},
		{"Gamma", l.Gamma, int64(l.Cols)}, {"Mean", l.Mean, int64(l.Rows)}, {"Rstd", l.Rstd, int64(l.Rows)},
	} {
		if err := need(k, o.name, o.v, F32, o.n); err != nil {
			return err
		}
	}
	for _, o := range []struct {
		name string
		v    View
	}{{"DGamma", l.DGamma}, {"DBeta", l.DBeta}} {
		if o.v.Buf != nil {
			if err := need(k, o.name, o.v, F32, int64(l.Cols)); err != nil {
				return err
			}
		}
	}
	if l.DGamma.Buf != nil || l.DBeta.Buf != nil {
		if err := needScratch(k, l.Scratch, 2*ColumnScratchLen(l.Rows, l.Cols), l.Rows, l.Cols); err != nil {
			return err
		}
	}
	return sameBackend(k, l.X, l.DY, l.DX, l.Gamma, l.Mean, l.Rstd, l.DGamma, l.DBeta, l.Scratch)
}

// Check implements Call.
func (s SoftmaxBackward) Check() error {
	const k = "softmax_bwd"
	if err := positive(k, "Rows", s.Rows, "Cols", s.Cols); err != nil {
		return err
	}
	n := int64(s.Rows) * int64(s.Cols)
	if err := need(k, matDesc("Y", s.Rows, s.Cols), s.Y, F32, n); err != nil {
		return err
	}
	if err := need(k, "DY", s.DY, F32, n); err != nil {
		return err
	}
	if err := need(k, "DX", s.DX, F32, n); err != nil {
		return err
	}
	return sameBackend(k, s.Y, s.DY, s.DX)
}

// Check implements Call.
func (a ActBackward) Check() error {
	const k = "act_bwd"
	if err := positive(k, "Rows", a.Rows, "Cols", a.Cols); err != nil {
		return err
	}
	if a.Act > ActTanh {
		return shapeErr(k, "unknown activation %d", a.Act)
	}
	if a.FromOutput && a.Act == ActGELU {
		return shapeErr(k, "FromOutput needs the activation's input for GELU (its output does not determine the derivative)")
	}
	n := int64(a.Rows) * int64(a.Cols)
	if a.Act != ActNone {
		if err := need(k, matDesc("X", a.Rows, a.Cols), a.X, F32, n); err != nil {
			return err
		}
	}
	if err := need(k, matDesc("DY", a.Rows, a.Cols), a.DY, F32, n); err != nil {
		return err
	}
	if err := need(k, "DX", a.DX, F32, n); err != nil {
		return err
	}
	if a.DBias.Buf != nil {
		if err := need(k, "DBias", a.DBias, F32, int64(a.Cols)); err != nil {
			return err
		}
		if err := needScratch(k, a.Scratch, ColumnScratchLen(a.Rows, a.Cols), a.Rows, a.Cols); err != nil {
			return err
		}
	}
	return sameBackend(k, a.X, a.DY, a.DX, a.DBias, a.Scratch)
}

// Check implements Call.
func (e EmbeddingBackward) Check() error {
	const k = "embedding_bwd"
	if err := positive(k, "N", e.N, "Dim", e.Dim, "Vocab", e.Vocab); err != nil {
		return err
	}
	if err := need(k, matDesc("DY", e.N, e.Dim), e.DY, F32, int64(e.N)*int64(e.Dim)); err != nil {
		return err
	}
	if err := need(k, "Ids", e.Ids, I32, int64(e.N)); err != nil {
		return err
	}
	if err := need(k, matDesc("DTable", e.Vocab, e.Dim), e.DTable, F32, int64(e.Vocab)*int64(e.Dim)); err != nil {
		return err
	}
	return sameBackend(k, e.DY, e.Ids, e.DTable)
}

// Check implements Call.
func (c CrossEntropy) Check() error {
	const k = "cross_entropy"
	if err := positive(k, "Rows", c.Rows, "Cols", c.Cols); err != nil {
		return err
	}
	if !(c.Smoothing >= 0 && c.Smoothing < 1) {
		return shapeErr(k, "Smoothing = %g, must be in [0, 1)", c.Smoothing)
	}
	if c.Loss.Buf == nil && c.DLogits.Buf == nil {
		return shapeErr(k, "neither Loss nor DLogits is set")
	}
	n := int64(c.Rows) * int64(c.Cols)
	if err := need(k, matDesc("Logits", c.Rows, c.Cols), c.Logits, F32, n); err != nil {
		return err
	}
	if err := need(k, "Labels", c.Labels, I32, int64(c.Rows)); err != nil {
		return err
	}
	if c.Loss.Buf != nil {
		if err := need(k, "Loss", c.Loss, F32, int64(c.Rows)); err != nil {
			return err
		}
	}
	if c.DLogits.Buf != nil {
		if err := need(k, matDesc("DLogits", c.Rows, c.Cols), c.DLogits, F32, n); err != nil {
			return err
		}
	}
	return sameBackend(k, c.Logits, c.Labels, c.Loss, c.DLogits)
}

// Check implements Call.
func (d Dropout) Check() error {
	const k = "dropout"
	if err := positive(k, "N", d.N); err != nil {
		return err
	}
	if !(d.P >= 0 && d.P < 1) {
		return shapeErr(k, "P = %g, must be in [0, 1)", d.P)
	}
	if err := need(k, "X", d.X, F32, int64(d.N)); err != nil {
		return err
	}
	if err := need(k, "Y", d.Y, F32, int64(d.N)); err != nil {
		return err
	}
	if d.Seeds.Buf != nil {
		if err := need(k, "Seeds", d.Seeds, I32, 2); err != nil {
			return err
		}
	}
	return sameBackend(k, d.X, d.Y, d.Seeds)
}

func checkEps(kernel string, eps float32) error {
	if !(eps > 0) || math.IsInf(float64(eps), 0) {
		return shapeErr(kernel, "Eps = %g, must be > 0", eps)
	}
	return nil
}

// Check implements Call.
func (l L2Normalize) Check() error {
	const k = "l2norm"
	if err := positive(k, "Rows", l.Rows, "Cols", l.Cols); err != nil {
		return err
	}
	if err := checkEps(k, l.Eps); err != nil {
		return err
	}
	n := int64(l.Rows) * int64(l.Cols)
	if err := need(k, matDesc("X", l.Rows, l.Cols), l.X, F32, n); err != nil {
		return err
	}
	if err := need(k, "Y", l.Y, F32, n); err != nil {
		return err
	}
	return sameBackend(k, l.X, l.Y)
}

// Check implements Call.
func (l L2NormalizeBackward) Check() error {
	const k = "l2norm_bwd"
	if err := positive(k, "Rows", l.Rows, "Cols", l.Cols); err != nil {
		return err
	}
	if err := checkEps(k, l.Eps); err != nil {
		return err
	}
	n := int64(l.Rows) * int64(l.Cols)
	if err := need(k, matDesc("X", l.Rows, l.Cols), l.X, F32, n); err != nil {
		return err
	}
	if err := need(k, "DY", l.DY, F32, n); err != nil {
		return err
	}
	if err := need(k, "DX", l.DX, F32, n); err != nil {
		return err
	}
	return sameBackend(k, l.X, l.DY, l.DX)
}

// Check implements Call.
func (a AdamW) Check() error {
	const k = "adamw"
	if err := positive(k, "N", a.N); err != nil {
		return err
	}
	for _, b := range []struct {
		name string
		v    float32
	}{{"Beta1", a.Beta1}, {"Beta2", a.Beta2}} {
		if !(b.v >= 0 && b.v < 1) {
			return shapeErr(k, "%s = %g, must be in [0, 1)", b.name, b.v)
		}
	}
	for _, b := range []struct {
		name string
		v    float32
	}{{"BiasCorrection1", a.BiasCorrection1}, {"BiasCorrection2", a.BiasCorrection2}} {
		if !(b.v > 0 && b.v <= 1) {
			return shapeErr(k, "%s = %g, must be in (0, 1] (1 - beta^step)", b.name, b.v)
		}
	}
	if !(a.Eps > 0) || !(a.LR >= 0) || !(a.WeightDecay >= 0) || math.IsInf(float64(a.LR), 0) || math.IsInf(float64(a.WeightDecay), 0) {
		return shapeErr(k, "LR = %g, Eps = %g, WeightDecay = %g: need LR >= 0, Eps > 0, WeightDecay >= 0", a.LR, a.Eps, a.WeightDecay)
	}
	for _, o := range []struct {
		name string
		v    View
	}{{"Param", a.Param}, {"Grad", a.Grad}, {"M", a.M}, {"V", a.V}} {
		if err := need(k, fmt.Sprintf("%s (%d)", o.name, a.N), o.v, F32, int64(a.N)); err != nil {
			return err
		}
	}
	return sameBackend(k, a.Param, a.Grad, a.M, a.V)
}

// Check implements Call.
func (c ColumnSum) Check() error {
	const k = "colsum"
	if err := positive(k, "Rows", c.Rows, "Cols", c.Cols); err != nil {
		return err
	}
	if err := need(k, matDesc("X", c.Rows, c.Cols), c.X, F32, int64(c.Rows)*int64(c.Cols)); err != nil {
		return err
	}
	if err := need(k, "Y", c.Y, F32, int64(c.Cols)); err != nil {
		return err
	}
	if err := needScratch(k, c.Scratch, ColumnScratchLen(c.Rows, c.Cols), c.Rows, c.Cols); err != nil {
		return err
	}
	return sameBackend(k, c.X, c.Y, c.Scratch)
}

// Check implements Call.
func (c Copy2D) Check() error {
	const k = "copy2d"
	if err := positive(k, "Rows", c.Rows, "Cols", c.Cols); err != nil {
		return err
	}
	ldx, ldy := c.Lds()
	if ldx < c.Cols || ldy < c.Cols {
		return shapeErr(k, "leading dimensions (%d, %d) smaller than Cols %d", ldx, ldy, c.Cols)
	}
	d := c.X.DType
	if d != F32 && !(d == I32 && !c.Accumulate) {
		return shapeErr(k, "X is %s, want f32 (or i32 without Accumulate)", d)
	}
	if err := need(k, fmt.Sprintf("X (%dx%d, ld %d)", c.Rows, c.Cols, ldx), c.X, d, span(1, 0, c.Rows, c.Cols, ldx)); err != nil {
		return err
	}
	if err := need(k, fmt.Sprintf("Y (%dx%d, ld %d)", c.Rows, c.Cols, ldy), c.Y, d, span(1, 0, c.Rows, c.Cols, ldy)); err != nil {
		return err
	}
	return sameBackend(k, c.X, c.Y)
}
