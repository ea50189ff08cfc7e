package graph

import (
	"blip/gpu"
)

// Cross-entropy with label smoothing and ignore_index, as
// torch.nn.functional.cross_entropy(logits, labels, label_smoothing=eps,
// ignore_index=-100, reduction="mean"): the mean over the rows whose label is
// a class. The fused CrossEntropy kernel gives per-row losses (forward) and
// the logits' gradient (backward, recomputing the softmax); the count of
// counted rows comes from gathering ones by label (an Embedding of a (V, 1)
// table of ones gives 1 for a class and 0 for anything else).

var opCrossEntropy = defOp("cross_entropy", crossEntropyGrad)

type ceAttr struct {
	smoothing  float32
	count      *Tensor // saved: number of counted rows (1)
	countTemp  *Tensor // no-grad: the same as scratch
	rows, cols int
}

// IgnoreIndex is the label of rows that do not count (PyTorch's default
// ignore_index). Any label outside [0, classes) is ignored alike.
const IgnoreIndex = -100

// CrossEntropy returns the mean cross-entropy (a scalar) of logits (..., V)
// against i32 labels (...), with label smoothing in [0, 1). Rows labelled
// IgnoreIndex are left out of the mean; if every row is, the loss is NaN
// (as PyTorch's).
func (g *Graph) CrossEntropy(logits, labels *Tensor, smoothing float32) *Tensor {
	name := g.opName("cross_entropy")
	if !g.check(name, logits, labels) || !g.needF32(name, []string{"logits"}, logits) {
		return g.invalid()
	}
	if labels.dtype != gpu.I32 {
		return g.failf(name, "labels %v must be i32", labels)
	}
	if !(smoothing >= 0 && smoothing < 1) {
		return g.failf(name, "label smoothing %g is not in [0, 1)", smoothing)
	}
	rows, cols := logits.shape.Rows(), logits.shape.Last()
	if logits.shape.Rank() < 1 || labels.Numel() != rows {
		return g.failf(name, "logits %v and labels %v: want one label per row of logits (%d)", logits, labels, rows)
	}
	y := g.act(Shape{})
	ones := g.ones(cols)
	n := g.add(opCrossEntropy, name, []*Tensor{logits, labels, ones}, []*Tensor{y})
	a := &ceAttr{smoothing: smoothing, rows: rows, cols: cols, count: g.act(Shape{1}), countTemp: g.act(Shape{1})}
	n.attr = a
	n.saved, n.inferTemps = []*Tensor{a.count}, []*Tensor{a.countTemp}
	perRow, valid, total := g.act(Shape{rows}), g.act(Shape{rows}), g.act(Shape{1})
	n.temps = []*Tensor{perRow, valid, total}
	n.emit = func(e *emitCtx) []gpu.Call {
		count := a.count
		if !e.has(count) {
			count = a.countTemp
		}
		return []gpu.Call{
			gpu.CrossEntropy{Logits: e.v(logits), Labels: e.v(labels), Loss: e.v(perRow), Rows: rows, Cols: cols, Smoothing: smoothing},
			gpu.Embedding{Table: e.vn(ones, cols), Ids: e.v(labels), Y: e.v(valid), N: rows, Dim: 1, Vocab: cols},
			gpu.Reduce{Op: gpu.ReduceSum, X: e.v(valid), Y: e.v(count), Rows: 1, Cols: rows},
			gpu.Reduce{Op: gpu.ReduceSum, X: e.v(perRow), Y: e.v(total), Rows: 1, Cols: rows},
			gpu.Binary{Op: gpu.BinaryDiv, A: e.v(total), B: e.v(count), C: e.v(y), N: 1},
		}
	}
	return y
}

func crossEntropyGrad(b *backCtx, n *node) {
	a := n.attr.(*ceAttr)
	logits, labels := n.ins[0], n.ins[1]
	dy := b.grad(n.outs[0])
	bn := b.begin(dy, logits, labels, a.count)
	coef := b.temp(bn, Shape{1})
	w, addTo := b.over(bn, logits, nil)
	bn.emit = func(e *emitCtx) []gpu.Call {
		return append([]gpu.Call{
			// d loss / d logits = dy/count * (p - (1-eps) onehot - eps/V) on
			// counted rows, 0 on ignored ones.
			gpu.Binary{Op: gpu.BinaryDiv, A: e.v(dy), B: e.v(a.count), C: e.v(coef), N: 1},
			gpu.CrossEntropy{Logits: e.v(logits), Labels: e.v(labels), DLogits: e.v(w), Rows: a.rows, Cols: a.cols,
				Smoothing: a.smoothing},
			gpu.Binary{Op: gpu.BinaryMul, A: e.v(w), B: e.v(coef), C: e.v(w), N: a.rows * a.cols, BN: 1},
		}, finishOver(e, w, addTo)...)
	}
}

// Soft-target cross-entropy, -sum_j t_j log softmax(z)_j per row, averaged
// over rows: BLIP's image-text contrastive loss with momentum distillation
// (targets mixing the one-hot matches with the momentum model's softmax).
// There is no log kernel; the row's log-sum-exp comes from the
// CrossEntropy kernel with label 0 (its loss is lse - z_0), so that
//
//	loss_r = lse_r * sum_j t_j - sum_j t_j z_j
//	d loss_r / d z_j = p_j * sum_k t_k - t_j

var opSoftCrossEntropy = defOp("soft_cross_entropy", softCrossEntropyGrad)

type softCEAttr struct {
	rows, cols int
	tsum       *Tensor // saved: sum_j t_j per row
	tsumTemp   *Tensor // no-grad: the same as scratch
}

// SoftCrossEntropy returns the mean over rows of -sum_j targets_j *
// log softmax(logits)_j, for logits and targets (..., V). No gradient flows
// to targets (BLIP's are computed without one).
func (g *Graph) SoftCrossEntropy(logits, targets *Tensor) *Tensor {
	name := g.opName("soft_cross_entropy")
	if !g.check(name, logits, targets) || !g.needF32(name, []string{"logits", "targets"}, logits, targets) {
		return g.invalid()
	}
	if logits.shape.Rank() < 1 || !logits.shape.Equal(targets.shape) {
		return g.failf(name, "logits %v and targets %v must have the same shape", logits, targets)
	}
	rows, cols := logits.shape.Rows(), logits.shape.Last()
	zeroIds := g.ConstI32(name+".labels", make([]int32, rows), rows)
	y := g.act(Shape{})
	n := g.add(opSoftCrossEntropy, name, []*Tensor{logits, targets, zeroIds}, []*Tensor{y})
	n.nondiff = map[*Tensor]bool{targets: true}
	a := &softCEAttr{rows: rows, cols: cols, tsum: g.act(Shape{rows}), tsumTemp: g.act(Shape{rows})}
	n.attr = a
	n.saved, n.inferTemps = []*Tensor{a.tsum}, []*Tensor{a.tsumTemp}
	lse, z0, tz := g.act(Shape{rows}), g.act(Shape{rows}), g.act(Shape{rows})
	prod := g.act(logits.shape)
	n.temps = []*Tensor{lse, z0, tz, prod}
	n.emit = func(e *emitCtx) []gpu.Call {
		ts := a.tsum
		if !e.has(ts) {
			ts = a.tsumTemp
		}
		l, z, t, p := e.v(lse), e.v(z0), e.v(tz), e.v(prod)
		return []gpu.Call{
			gpu.CrossEntropy{Logits: e.v(logits), Labels: e.v(zeroIds), Loss: l, Rows: rows, Cols: cols},
			gpu.Copy2D{X: e.v(logits), Y: z, Rows: rows, Cols: 1, LdX: cols},
			gpu.Binary{Op: gpu.BinaryAdd, A: l, B: z, C: l, N: rows}, // lse
			gpu.Reduce{Op: gpu.ReduceSum, X: e.v(targets), Y: e.v(ts), Rows: rows, Cols: cols},
			gpu.Binary{Op: gpu.BinaryMul, A: e.v(targets), B: e.v(logits), C: p, N: rows * cols},
			gpu.Reduce{Op: gpu.ReduceSum, X: p, Y: t, Rows: rows, Cols: cols},
			gpu.Binary{Op: gpu.BinaryMul, A: l, B: e.v(ts), C: l, N: rows},
			gpu.Binary{Op: gpu.BinarySub, A: l, B: t, C: l, N: rows},
			gpu.Reduce{Op: gpu.ReduceMean, X: l, Y: e.v(y), Rows: 1, Cols: rows},
		}
	}
	return y
}

func softCrossEntropyGrad(b *backCtx, n *node) {
	a := n.attr.(*softCEAttr)
	logits, targets := n.ins[0], n.ins[1]
	dy := b.grad(n.outs[0])
	ones := b.g.ones(a.cols)
	bn := b.begin(dy, logits, targets, a.tsum, ones)
	coef := b.temp(bn, Shape{1})
	expand := b.temp(bn, logits.shape)
	w, addTo := b.over(bn, logits, nil)
	bn.emit = func(e *emitCtx) []gpu.Call {
		n := a.rows * a.cols
		wv, ev := e.v(w), e.v(expand)
		return append([]gpu.Call{
			gpu.Softmax{X: e.v(logits), Y: wv, Rows: a.rows, Cols: a.cols},
			// expand[r, :] = tsum[r]: a rank-1 Gemm with ones.
			gpu.Gemm{A: e.v(a.tsum), B: e.vn(ones, a.cols), C: ev, M: a.rows, N: a.cols, K: 1},
			gpu.Binary{Op: gpu.BinaryMul, A: wv, B: ev, C: wv, N: n},
			gpu.Binary{Op: gpu.BinarySub, A: wv, B: e.v(targets), C: wv, N: n},
			gpu.Unary{Op: gpu.UnaryScale, X: e.v(dy), Y: e.v(coef), N: 1, Alpha: 1 / float32(a.rows)},
			gpu.Binary{Op: gpu.BinaryMul, A: wv, B: e.v(coef), C: wv, N: n, BN: 1},
		}, finishOver(e, w, addTo)...)
	}
}
