package graph

import (
	"blip/gpu"
)

// MatMul: batched matrix products with optional transposes, one Gemm.

var opMatMul = defOp("matmul", matmulGrad)

type matmulAttr struct {
	transA, transB bool
	batch          int
	m, n, k        int
	bcastA, bcastB bool // a 2-D operand shared by every batch
}

// MatMul returns op(a) @ op(b) where op transposes the last two dimensions
// when asked: a (..., M, K) or, with transA, (..., K, M); b (..., K, N) or,
// with transB, (..., N, K); the result is (..., M, N). The leading (batch)
// dimensions of a and b are equal, or one operand is 2-D and is shared by
// every batch.
func (g *Graph) MatMul(a, b *Tensor, transA, transB bool) *Tensor {
	name := g.opName("matmul")
	if !g.check(name, a, b) || !g.needF32(name, []string{"a", "b"}, a, b) {
		return g.invalid()
	}
	if a.shape.Rank() < 2 || b.shape.Rank() < 2 {
		return g.failf(name, "a %v and b %v must both be at least 2-D", a, b)
	}
	ra, rb := a.shape.Rank(), b.shape.Rank()
	m, k := a.shape[ra-2], a.shape[ra-1]
	if transA {
		m, k = k, m
	}
	k2, nn := b.shape[rb-2], b.shape[rb-1]
	if transB {
		k2, nn = nn, k2
	}
	if k != k2 {
		return g.failf(name, "a %v (transposed: %v) and b %v (transposed: %v): inner dimensions %d and %d differ", a, transA, b, transB, k, k2)
	}
	at := &matmulAttr{transA: transA, transB: transB, m: m, n: nn, k: k}
	var lead Shape
	switch {
	case ra == rb:
		if !Shape(a.shape[:ra-2]).Equal(b.shape[:rb-2]) {
			return g.failf(name, "a %v and b %v: batch dimensions differ", a, b)
		}
		lead = a.shape[:ra-2]
	case rb == 2:
		lead, at.bcastB = a.shape[:ra-2], true
	case ra == 2:
		lead, at.bcastA = b.shape[:rb-2], true
	default:
		return g.failf(name, "a %v and b %v: batch dimensions differ (only a 2-D operand broadcasts)", a, b)
	}
	at.batch = lead.Numel()
	y := g.act(append(lead.Clone(), m, nn))
	n := g.add(opMatMul, name, []*Tensor{a, b}, []*Tensor{y})
	n.attr = at
	n.emit = func(e *emitCtx) []gpu.Call {
		return []gpu.Call{at.gemm(e.v(a), e.v(b), e.v(y), false, false, 0)}
	}
	return y
}

// gemm is the forward product, or (gradA/gradB) the product the gradient of
// a or b needs, for all batches at once: strides follow from which operand
// is shared.
func (at *matmulAttr) gemm(a, b, c gpu.View, gradA, gradB bool, beta float32) gpu.Gemm {
	m, n, k := int64(at.m), int64(at.n), int64(at.k)
	sa, sb := m*k, k*n
	if at.bcastA {
		sa = 0
	}
	if at.bcastB {
		sb = 0
	}
	switch {
	case gradA:
		// c = dA, a = dC (M, N), b = B.
		if !at.transA {
			// dA (M, K) = dC @ op(B)^T
			return gpu.Gemm{A: a, B: b, C: c, Batch: at.batch, M: at.m, N: at.k, K: at.n, TransB: !at.transB,
				StrideA: m * n, StrideB: sb, StrideC: m * k, Beta: beta}
		}
		// dA stored (K, M) = op(B) @ dC^T
		return gpu.Gemm{A: b, B: a, C: c, Batch: at.batch, M: at.k, N: at.m, K: at.n, TransA: at.transB, TransB: true,
			StrideA: sb, StrideB: m * n, StrideC: m * k, Beta: beta}
	case gradB:
		// c = dB, a = A, b = dC (M, N).
		if !at.transB {
			// dB (K, N) = op(A)^T @ dC
			return gpu.Gemm{A: a, B: b, C: c, Batch: at.batch, M: at.k, N: at.n, K: at.m, TransA: !at.transA,
				StrideA: sa, StrideB: m * n, StrideC: k * n, Beta: beta}
		}
		// dB stored (N, K) = dC^T @ op(A)
		return gpu.Gemm{A: b, B: a, C: c, Batch: at.batch, M: at.n, N: at.k, K: at.m, TransA: true, TransB: at.transA,
			StrideA: m * n, StrideB: sa, StrideC: k * n, Beta: beta}
	}
	return gpu.Gemm{A: a, B: b, C: c, Batch: at.batch, M: at.m, N: at.n, K: at.k, TransA: at.transA, TransB: at.transB,
		StrideA: sa, StrideB: sb}
}

func matmulGrad(b *backCtx, n *node) {
	at := n.attr.(*matmulAttr)
	x, w, y := n.ins[0], n.ins[1], n.outs[0]
	dy := b.grad(y)
	bn := b.begin(dy)
	var da, db *Tensor
	var aAcc, bAcc bool
	if b.needs(n, x) {
		bn.ins = append(bn.ins, w)
		da, aAcc = b.acc(bn, x)
	}
	if b.needs(n, w) {
		bn.ins = append(bn.ins, x)
		db, bAcc = b.acc(bn, w)
	}
	bn.emit = func(e *emitCtx) []gpu.Call {
		var calls []gpu.Call
		if da != nil {
			calls = append(calls, at.gradShared(e.v(dy), e.v(w), e.v(da), true, at.bcastA, aAcc)...)
		}
		if db != nil {
			calls = append(calls, at.gradShared(e.v(x), e.v(dy), e.v(db), false, at.bcastB, bAcc)...)
		}
		return calls
	}
}

// gradShared emits the gradient of a (gradA) or b. A shared (2-D) operand's
// gradient sums over batches: one Gemm when the batches of the other
// operands stack into one tall matrix, else one Gemm per batch adding up.
func (at *matmulAttr) gradShared(p, q, c gpu.View, gradA, shared, acc bool) []gpu.Call {
	if !shared || at.batch == 1 {
		g := at.gemm(p, q, c, gradA, !gradA, beta(acc))
		if at.batch == 1 || shared {
			g.Batch, g.StrideA, g.StrideB, g.StrideC = 0, 0, 0, 0
		}
		return []gpu.Call{g}
	}
	m, n, k := at.m, at.n, at.k
	if !gradA && !at.transA {
		// b shared: stack the batches of A (M, K) and dC (M, N) into
		// (batch*M, K) and (batch*M, N).
		rows := at.batch * m
		if !at.transB {
			return []gpu.Call{gpu.Gemm{A: p, B: q, C: c, M: k, N: n, K: rows, TransA: true, Beta: beta(acc)}}
		}
		return []gpu.Call{gpu.Gemm{A: q, B: p, C: c, M: n, N: k, K: rows, TransA: true, Beta: beta(acc)}}
	}
	var calls []gpu.Call
	one := *at
	one.batch, one.bcastA, one.bcastB = 1, false, false
	for i := 0; i < at.batch; i++ {
		var pi, qi gpu.View
		if gradA { // p = dC, q = B
			pi = p.Slice(int64(i*m*n), int64(m*n))
			qi = q.Slice(int64(i*k*n), int64(k*n))
		} else { // p = A, q = dC
			pi = p.Slice(int64(i*m*k), int64(m*k))
			qi = q.Slice(int64(i*m*n), int64(m*n))
		}
		g := one.gemm(pi, qi, c, gradA, !gradA, beta(acc || i > 0))
		g.Batch, g.StrideA, g.StrideB, g.StrideC = 0, 0, 0, 0
		calls = append(calls, g)
	}
	return calls
}
