package graph

import (
	"blip/gpu"
)

// Embedding lookup: forward gathers table rows, backward scatter-adds the
// output gradient into the table's gradient with EmbeddingBackward, in id
// order (deterministic: no float atomics).

var opEmbedding = defOp("embedding", embeddingGrad)

// Embedding returns table[ids]: table (V, D) f32, ids i32 of any shape,
// result (ids..., D). Ids outside [0, V) give zero rows and no gradient.
func (g *Graph) Embedding(table, ids *Tensor) *Tensor {
	name := g.opName("embedding")
	if !g.check(name, table, ids) || !g.needF32(name, []string{"table"}, table) {
		return g.invalid()
	}
	if table.shape.Rank() != 2 {
		return g.failf(name, "table %v must be 2-D (vocab, dim)", table)
	}
	if ids.dtype != gpu.I32 {
		return g.failf(name, "ids %v must be i32", ids)
	}
	vocab, dim := table.shape[0], table.shape[1]
	y := g.act(append(ids.shape.Clone(), dim))
	n := g.add(opEmbedding, name, []*Tensor{table, ids}, []*Tensor{y})
	n.emit = func(e *emitCtx) []gpu.Call {
		return []gpu.Call{gpu.Embedding{Table: e.v(table), Ids: e.v(ids), Y: e.v(y), N: ids.Numel(), Dim: dim, Vocab: vocab}}
	}
	return y
}

func embeddingGrad(b *backCtx, n *node) {
	table, ids := n.ins[0], n.ins[1]
	dy := b.grad(n.outs[0])
	if !b.needs(n, table) {
		return
	}
	bn := b.begin(dy, ids)
	dt, acc := b.acc(bn, table)
	zeros := b.g.zeros(zeroChunk)
	bn.ins = append(bn.ins, zeros)
	bn.emit = func(e *emitCtx) []gpu.Call {
		var calls []gpu.Call
		if !acc {
			calls = zeroFill(e.v(dt), e.v(zeros))
		}
		return append(calls, gpu.EmbeddingBackward{DY: e.v(dy), Ids: e.v(ids), DTable: e.v(dt),
			N: ids.Numel(), Dim: table.shape[1], Vocab: table.shape[0]})
	}
}
