package gpu

// QueryAttention is a linear layer's output taken as an attention's
// queries (a decoder's cross-attention query projection, then the
// cross-attention): exactly P, then A, where P writes A's queries, (B,
// Tq, H*D) packed. A backend may run both in one pass (Vulkan does for
// decoding's few queries: each workgroup of the split attention projects
// its head's queries itself), which saves a dispatch and the barrier
// between the two; it computes what the two calls compute, to fp32
// summation order, except that A.Q (P.C) is then scratch that nothing
// writes: only O and LSE are results.
//
// P is a linear layer: one batch, B (the weight) stored (N, K) (TransB),
// Alpha 1 (or 0), Beta 0, no activation, M = B*Tq rows of N = H*D
// columns written packed into A.Q. P.F16 and A.F16 are each their call's
// (fp16 decoding projects in half precision and attends in fp32).
type QueryAttention struct {
	P Gemm
	A Attention
}

func init() { KernelNames = append(KernelNames, "query_attention") }

// Kernel implements Call.
func (QueryAttention) Kernel() string { return "query_attention" }

// Check implements Call.
func (c QueryAttention) Check() error {
	const k = "query_attention"
	if err := checkParts(k, c.P, c.A); err != nil {
		return err
	}
	p, s := c.P, c.A.AttentionShape
	if p.Batch > 1 || !p.TransB || p.TransA || (p.Alpha != 0 && p.Alpha != 1) || p.Beta != 0 || p.Act != ActNone {
		return shapeErr(k, "P must be a linear layer (one batch, TransB, Alpha 1, Beta 0, no activation)")
	}
	if p.A.DType != F32 || c.A.O.DType != F32 || c.A.K.DType != F32 {
		return shapeErr(k, "P.A is %s and A.O %s: the fused kernel reads and writes f32", p.A.DType, c.A.O.DType)
	}
	hd := s.H * s.D
	if p.M != s.B*s.Tq || p.N != hd {
		return shapeErr(k, "P writes %dx%d, A's queries are (B*Tq=%d, H*D=%d)", p.M, p.N, s.B*s.Tq, hd)
	}
	if (p.LdC != 0 && p.LdC != hd) || (p.LdA != 0 && p.LdA != p.K) {
		return shapeErr(k, "P must read A and write C packed (LdA %d, LdC %d)", p.K, hd)
	}
	ls := s.Layouts()
	if ls[0].Tok != int64(hd) || (s.B > 1 && ls[0].Batch != int64(s.Tq)*int64(hd)) {
		return shapeErr(k, "A.Q must be packed (B, Tq, H*D) (token stride %d, batch stride %d)", ls[0].Tok, ls[0].Batch)
	}
	n := int64(p.M) * int64(hd)
	if p.C.Slice(0, n) != c.A.Q.Slice(0, n) {
		return shapeErr(k, "P.C %v is not A.Q %v", p.C, c.A.Q)
	}
	// The one-pass form reads P's A where the two-pass one reads Q: A's
	// output must not overwrite either before the reads.
	for _, o := range []struct {
		name string
		v    View
	}{{"O", c.A.O}, {"LSE", c.A.LSE}} {
		for _, in := range []View{p.A, p.B, p.Bias} {
			if o.v.Overlaps(in) {
				return shapeErr(k, "A.%s %v overlaps P's operand %v", o.name, o.v, in)
			}
		}
	}
	return nil
}
