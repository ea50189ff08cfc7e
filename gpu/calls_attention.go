package gpu

import (
	"fmt"
	"math"
)

// Fused attention: Attention (forward) and AttentionBackward, flash-attention
// style. Neither materialises the Tq x Tk score matrix in memory: the
// backends work through it in tiles (an online softmax in the forward, a
// recomputation of the probabilities from the log-sum-exp in the backward),
// so no memory proportional to Tq*Tk is allocated, by the call or by the
// backend behind it (the CPU twin keeps one row of Tk scores per worker, the
// Vulkan shaders tiles in shared memory). The caller's only extra tensor is
// the optional LSE (B*H*Tq floats).

func init() {
	KernelNames = append(KernelNames, "attention", "attention_bwd")
}

// MaxAttentionHeadDim is the largest head dimension D the attention kernels
// take (the Vulkan shaders hold a row of D values per thread in registers).
const MaxAttentionHeadDim = 128

// AttentionShape is the geometry shared by Attention and AttentionBackward:
// B batches of H heads, Tq queries and Tk keys, head dimension D.
//
// Element (b, t, h, d) of a tensor lies at b*Batch + t*Tok + h*D + d of its
// view: heads are side by side within a token (head stride D), as the linear
// layers produce them. With the strides 0 the tensors are packed (B, T, H*D);
// a fused qkv projection (B, T, 3*H*D) is read in place with Q, K and V views
// starting at elements 0, H*D and 2*H*D of it and token stride 3*H*D.
//
// Attention of query i over key j is
//
//	s[i, j] = Scale * Q[i] . K[j] + Mask[b, j]
//
// softmax over j, then the average of V by those weights. Mask (optional,
// (B, Tk) packed, additive: 0 keeps, a large negative value or -Inf removes a
// key) is the key-padding mask. Causal removes the keys j > i + (Tk - Tq):
// for Tq = Tk query i sees keys 0..i; for Tq < Tk the queries are the last
// Tq positions of the sequence (decoding with a KV cache). A query row with
// no key left (every s[i, j] -Inf) gives an output row of zeros and gradient
// zero.
type AttentionShape struct {
	B, H, Tq, Tk, D int
	Causal          bool
	// Scale 0 means 1/sqrt(D).
	Scale float32
	// Elements between consecutive tokens; 0 means H*D (packed). At least
	// H*D.
	QTok, KTok, VTok, OTok int
	// Elements between consecutive batches; 0 means T*Tok (T = Tq for Q and
	// O, Tk for K and V). Batches must not overlap.
	QBatch, KBatch, VBatch, OBatch int64
}

// AttentionLayout is one tensor's resolved strides, in elements.
type AttentionLayout struct {
	Tok   int64 // between consecutive tokens
	Batch int64 // between consecutive batches
}

// Layouts returns the resolved layouts of Q, K, V and O (in that order).
func (s AttentionShape) Layouts() [4]AttentionLayout {
	hd := int64(s.H) * int64(s.D)
	res := func(tok int, batch int64, t int) AttentionLayout {
		l := AttentionLayout{Tok: int64(tok), Batch: batch}
		if l.Tok == 0 {
			l.Tok = hd
		}
		if l.Batch == 0 {
			l.Batch = int64(t) * l.Tok
		}
		return l
	}
	return [4]AttentionLayout{
		res(s.QTok, s.QBatch, s.Tq), res(s.KTok, s.KBatch, s.Tk),
		res(s.VTok, s.VBatch, s.Tk), res(s.OTok, s.OBatch, s.Tq),
	}
}

// ScaleValue is Scale, or 1/sqrt(D) when Scale is 0.
func (s AttentionShape) ScaleValue() float32 {
	if s.Scale == 0 {
		return float32(1 / math.Sqrt(float64(s.D)))
	}
	return s.Scale
}

// Visible reports whether query i may attend to key j under Causal (always
// true without it).
func (s AttentionShape) Visible(i, j int) bool {
	return !s.Causal || j <= i+s.Tk-s.Tq
}

func (s AttentionShape) String() string {
	c := ""
	if s.Causal {
		c = ", causal"
	}
	return fmt.Sprintf("B=%d H=%d Tq=%d Tk=%d D=%d%s", s.B, s.H, s.Tq, s.Tk, s.D, c)
}

// span is the number of elements a tensor of T tokens with layout l covers.
func (s AttentionShape) span(l AttentionLayout, t int) int64 {
	return int64(s.B-1)*l.Batch + int64(t-1)*l.Tok + int64(s.H)*int64(s.D)
}

// check validates the shape and returns the resolved layouts.
func (s AttentionShape) check(k string) ([4]AttentionLayout, error) {
	var ls [4]AttentionLayout
	if err := positive(k, "B", s.B, "H", s.H, "Tq", s.Tq, "Tk", s.Tk, "D", s.D); err != nil {
		return ls, err
	}
	if s.D > MaxAttentionHeadDim {
		return ls, shapeErr(k, "D = %d exceeds the supported head dimension %d (%v)", s.D, MaxAttentionHeadDim, s)
	}
	if math.IsNaN(float64(s.Scale)) || math.IsInf(float64(s.Scale), 0) {
		return ls, shapeErr(k, "Scale = %g (%v)", s.Scale, s)
	}
	ls = s.Layouts()
	hd := int64(s.H) * int64(s.D)
	names := [4]string{"Q", "K", "V", "O"}
	ts := [4]int{s.Tq, s.Tk, s.Tk, s.Tq}
	for i, l := range ls {
		if l.Tok < hd {
			return ls, shapeErr(k, "%s token stride %d is less than H*D = %d (%v)", names[i], l.Tok, hd, s)
		}
		if s.B > 1 && l.Batch < int64(ts[i]-1)*l.Tok+hd {
			return ls, shapeErr(k, "%s batch stride %d makes batches of %d tokens (token stride %d) overlap (%v)", names[i], l.Batch, ts[i], l.Tok, s)
		}
	}
	return ls, nil
}

// needT checks a (B, T, H, D) tensor view of type d.
func (s AttentionShape) needT(k, name string, v View, l AttentionLayout, t int, d DType) error {
	desc := fmt.Sprintf("%s (B=%d, T=%d, H=%d, D=%d; token stride %d, batch stride %d)", name, s.B, t, s.H, s.D, l.Tok, l.Batch)
	return need(k, desc, v, d, s.span(l, t))
}

// Attention is the fused attention forward:
//
//	O[b, i, h, :] = sum_j softmax_j(s[i, j]) * V[b, j, h, :]
//
// with s as in AttentionShape. LSE (optional output, (B, H, Tq) packed)
// receives log(sum_j exp(s[i, j])) per query row, what AttentionBackward
// needs, and +Inf for a row with no visible key (so that exp(s - LSE) is 0
// there). O must not overlap Q, K, V or Mask. Q, K and V may be F16 or BF16
// (16-bit activations: all three of one type, widened exactly), and so may
// O (the input of 16-bit products), written rounded to nearest even; Mask
// and LSE are F32. Under F16 an f16 Q, K or V is read as it is, so keeping
// them in f16 changes no result.
//
// Memory: the call allocates nothing proportional to Tq*Tk (the scores are
// computed tile by tile with an online softmax and never stored); its only
// memory beyond the operands is the optional LSE, B*H*Tq floats.
type Attention struct {
	Q, K, V, O View
	Mask       View // optional, (B, Tk), additive
	LSE        View // optional output, (B, H, Tq)
	AttentionShape
	// F16 asks for half-precision products, what tensor cores run (fp16
	// inference): the two products read their operands rounded to f16
	// (round to nearest even, as Round(F16, x)) and accumulate in fp32.
	// Exactly:
	//
	//	s[i, j] = Scale * (f16(Q[i]) . f16(K[j])) + Mask[b, j]
	//	m[i] = max_j s[i, j], p[i, j] = exp(s[i, j] - m[i]), l[i] = sum_j p[i, j]
	//	O[i] = (sum_j f16(p[i, j]) * f16(V[j])) / l[i]
	//
	// with the dot products and sums in fp32; the softmax, the scaling,
	// the mask, LSE (m + log l) and the normalisation stay fp32. The
	// probabilities are rounded after the shift by the row's final
	// maximum (not a running one), so that the result does not depend on
	// how a backend tiles the keys. Backends round the same way (the
	// Vulkan kernels without cooperative matrices too), so they differ
	// only by fp32 summation order and by the rare probability that this
	// order moves across an f16 rounding boundary (one f16 unit).
	// AttentionBackward.F16 is the matching backward.
	F16 bool
}

// Kernel implements Call.
func (Attention) Kernel() string { return "attention" }

// Check implements Call.
func (a Attention) Check() error {
	const k = "attention"
	ls, err := a.check(k)
	if err != nil {
		return err
	}
	s := a.AttentionShape
	for i, x := range []struct {
		name string
		v    View
		t    int
	}{{"Q", a.Q, s.Tq}, {"K", a.K, s.Tk}, {"V", a.V, s.Tk}, {"O", a.O, s.Tq}} {
		if a.F16 && a.Q.DType == BF16 {
			return shapeErr(k, "F16 (half-precision products) with Q, K and V in bf16: they must be f32 or f16")
		}
		d := floatOr32(a.Q.DType) // Q, K and V share a type
		if x.name == "O" {
			d = floatOr32(a.O.DType)
		}
		if err := s.needT(k, x.name, x.v, ls[i], x.t, d); err != nil {
			return err
		}
	}
	if a.Mask.Buf != nil {
		if err := need(k, fmt.Sprintf("Mask (B=%d, Tk=%d)", s.B, s.Tk), a.Mask, F32, int64(s.B)*int64(s.Tk)); err != nil {
			return err
		}
	}
	if a.LSE.Buf != nil {
		if err := need(k, fmt.Sprintf("LSE (B=%d, H=%d, Tq=%d)", s.B, s.H, s.Tq), a.LSE, F32, int64(s.B)*int64(s.H)*int64(s.Tq)); err != nil {
			return err
		}
	}
	return sameBackend(k, a.Q, a.K, a.V, a.O, a.Mask, a.LSE)
}

// AttentionBackward is the fused attention backward: given the forward's
// inputs, its output O and log-sum-exp LSE (Attention.LSE, required) and the
// gradient DO of O, it overwrites DQ, DK and DV with the gradients of Q, K
// and V (they are not accumulated into). With P = exp(s - LSE) and
// Delta[i] = sum_d DO[i, d] * O[i, d] (computed inside):
//
//	DV[j] = sum_i P[i, j] * DO[i]
//	dS[i, j] = P[i, j] * (DO[i] . V[j] - Delta[i])
//	DQ[i] = Scale * sum_j dS[i, j] * K[j]
//	DK[j] = Scale * sum_i dS[i, j] * Q[i]
//
// Each gradient has the layout of its tensor (DQ: the Q strides, DK: K's,
// DV: V's, DO: O's), so a fused dqkv (B, T, 3*H*D) is written in place like a
// fused qkv is read. Mask, Causal and Scale must be those of the forward.
// The outputs must not overlap the inputs or each other; the result is
// deterministic (no atomics). Q, K and V may be F16 or BF16 (16-bit
// activations, as Attention reads them); the rest is F32.
//
// Memory: like Attention, nothing proportional to Tq*Tk is allocated (the
// probabilities are recomputed per tile from LSE); no scratch is needed.
type AttentionBackward struct {
	Q, K, V, O, DO View
	LSE            View // (B, H, Tq), from Attention
	Mask           View // optional, (B, Tk), additive
	DQ, DK, DV     View // outputs
	AttentionShape
	// F16 asks for half-precision products (mixed-precision training, the
	// backward of Attention.F16), as flash-attention runs them under
	// autocast: Q, K, V and DO are read rounded to f16, and so are the
	// probabilities and dS before the products they enter. Exactly, with
	// f16(x) = Round(F16, x) and every dot product and sum in fp32:
	//
	//	s[i, j] = Scale * (f16(Q[i]) . f16(K[j])) + Mask[b, j]
	//	P[i, j] = exp(s[i, j] - LSE[i])       (0 where LSE[i] is +Inf)
	//	Delta[i] = DO[i] . O[i]               (unrounded)
	//	dS[i, j] = P[i, j] * (f16(DO[i]) . f16(V[j]) - Delta[i])
	//	DV[j] = sum_i f16(P[i, j]) * f16(DO[i])
	//	DQ[i] = Scale * sum_j f16(dS[i, j]) * f16(K[j])
	//	DK[j] = Scale * sum_i f16(dS[i, j]) * f16(Q[i])
	//
	// P and dS stay fp32 where they are not a product's operand (dS takes
	// the unrounded P). Backends differ by fp32 summation order and, through
	// it, by a P or dS that lies that close to an f16 rounding boundary and
	// rounds to the other side (one f16 unit).
	F16 bool
}

// Kernel implements Call.
func (AttentionBackward) Kernel() string { return "attention_bwd" }

// Check implements Call.
func (a AttentionBackward) Check() error {
	const k = "attention_bwd"
	ls, err := a.check(k)
	if err != nil {
		return err
	}
	s := a.AttentionShape
	for _, x := range []struct {
		name string
		v    View
		l    int
		t    int
	}{
		{"Q", a.Q, 0, s.Tq}, {"K", a.K, 1, s.Tk}, {"V", a.V, 2, s.Tk}, {"O", a.O, 3, s.Tq}, {"DO", a.DO, 3, s.Tq},
		{"DQ", a.DQ, 0, s.Tq}, {"DK", a.DK, 1, s.Tk}, {"DV", a.DV, 2, s.Tk},
	} {
		d := F32
		if x.l < 3 && x.name[0] != 'D' {
			d = floatOr32(a.Q.DType) // Q, K and V share a type
		}
		if err := s.needT(k, x.name, x.v, ls[x.l], x.t, d); err != nil {
			return err
		}
	}
	if a.F16 && a.Q.DType == BF16 {
		return shapeErr(k, "F16 (half-precision products) with Q, K and V in bf16: they must be f32 or f16")
	}
	if err := need(k, fmt.Sprintf("LSE (B=%d, H=%d, Tq=%d)", s.B, s.H, s.Tq), a.LSE, F32, int64(s.B)*int64(s.H)*int64(s.Tq)); err != nil {
		return err
	}
	if a.Mask.Buf != nil {
		if err := need(k, fmt.Sprintf("Mask (B=%d, Tk=%d)", s.B, s.Tk), a.Mask, F32, int64(s.B)*int64(s.Tk)); err != nil {
			return err
		}
	}
	return sameBackend(k, a.Q, a.K, a.V, a.O, a.DO, a.LSE, a.Mask, a.DQ, a.DK, a.DV)
}
