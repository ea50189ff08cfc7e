package paritytest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"blip/gpu"
)

// Parity cases of the fused attention kernels (gpu/calls_attention.go):
// tiny and odd shapes, the BLIP shapes (ViT self-attention, text self-
// attention with padding masks, causal decoding, cross-attention of text
// over image tokens), fused-qkv and strided layouts, unaligned views and
// fully masked rows; the backward of each with a random DO, fed the exact O
// and LSE of its forward.

func init() {
	register(attentionCases)
	registerErrors(attentionErrorCases)
}

// attnCfg is one attention problem of the table.
type attnCfg struct {
	gpu.AttentionShape
	// Mask gives Mask[b, j]; nil: no mask.
	Mask func(b, j int) float64
	// Fused reads Q, K, V from one (B, T, 3*H*D) tensor (and writes DQ, DK,
	// DV into one); needs Tq == Tk and the default strides.
	Fused bool
	Off   int       // element offset of every view in its buffer
	Std   float64   // of Q and K; 0 means 1
	NoLSE bool      // forward without the LSE output
	OType gpu.DType // the forward's O: F32 (the zero value), F16 or BF16
	QType gpu.DType // the forward's Q, K and V, likewise
}

// padMask keeps the first lens[b] keys of batch b and gives the others neg.
func padMask(neg float64, lens ...int) func(b, j int) float64 {
	return func(b, j int) float64 {
		if j < lens[b%len(lens)] {
			return 0
		}
		return neg
	}
}

// attnLay is the layout of one (B, T, H, D) tensor inside a case tensor.
type attnLay struct {
	off        int // of element (0, 0, 0, 0)
	tok, batch int
}

func (l attnLay) at(b, t, h, d, D int) int { return l.off + b*l.batch + t*l.tok + h*D + d }

// attnGeom resolves the layouts of a config: tensor lengths and where Q, K,
// V, O live (for Fused, Q, K and V in the one "QKV" tensor).
type attnGeom struct {
	s          gpu.AttentionShape
	q, k, v, o attnLay
	lenQ, lenK int // lengths of the Q (or QKV) and K tensors
	lenV, lenO int
}

func geom(c attnCfg) attnGeom {
	s := c.AttentionShape
	hd := s.H * s.D
	if c.Fused {
		if s.Tq != s.Tk {
			panic("paritytest: a fused qkv attention case needs Tq == Tk")
		}
		s.QTok, s.KTok, s.VTok = 3*hd, 3*hd, 3*hd
	}
	ls := s.Layouts()
	lay := func(l gpu.AttentionLayout, off int) attnLay { return attnLay{off, int(l.Tok), int(l.Batch)} }
	span := func(l gpu.AttentionLayout, t int) int { return (s.B-1)*int(l.Batch) + (t-1)*int(l.Tok) + hd }
	g := attnGeom{s: s, q: lay(ls[0], 0), k: lay(ls[1], 0), v: lay(ls[2], 0), o: lay(ls[3], 0)}
	g.lenQ, g.lenK, g.lenV, g.lenO = span(ls[0], s.Tq), span(ls[1], s.Tk), span(ls[2], s.Tk), span(ls[3], s.Tq)
	if c.Fused {
		g.k.off, g.v.off = hd, 2*hd
		g.lenQ = s.B * s.Tq * 3 * hd
	}
	return g
}

// qkvViews makes the Q, K, V views (from one fused view when Fused).
func (g attnGeom) qkvViews(fused bool, v []gpu.View) (q, k, vv gpu.View, rest []gpu.View) {
	if fused {
		hd := int64(g.s.H * g.s.D)
		f := v[0]
		ls := g.s.Layouts()
		sp := func(l gpu.AttentionLayout) int64 {
			return int64(g.s.B-1)*l.Batch + int64(g.s.Tk-1)*l.Tok + hd
		}
		return f.Slice(0, sp(ls[0])), f.Slice(hd, sp(ls[1])), f.Slice(2*hd, sp(ls[2])), v[1:]
	}
	return v[0], v[1], v[2], v[3:]
}

// attnData generates the inputs of a case (rounded to f32) once.
type attnData struct {
	once              sync.Once
	name              string
	cfg               attnCfg
	g                 attnGeom
	qkv, k, v, do, mk []float64 // qkv: Q, or the fused QKV
	o, lse            []float64 // the exact forward of the inputs (backward cases)
	bwd               bool
}

func (a *attnData) gen() {
	a.once.Do(func() {
		g, s := a.g, a.g.s
		std := a.cfg.Std
		if std == 0 {
			std = 1
		}
		normal := func(what string, n int, sd float64) []float64 {
			r := rand.New(rand.NewPCG(seed(a.name, what), 7))
			x := make([]float64, n)
			for i := range x {
				x[i] = float64(float32(sd * r.NormFloat64()))
			}
			return x
		}
		if a.cfg.Fused {
			// Q and K columns get Std, V columns 1.
			a.qkv = normal("QKV", g.lenQ, 1)
			hd := s.H * s.D
			for i := range a.qkv {
				if (i % (3 * hd)) < 2*hd {
					a.qkv[i] = float64(float32(a.qkv[i] * std))
				}
			}
		} else {
			a.qkv = normal("Q", g.lenQ, std)
			a.k = normal("K", g.lenK, std)
			a.v = normal("V", g.lenV, 1)
		}
		if a.cfg.Mask != nil {
			a.mk = make([]float64, s.B*s.Tk)
			for b := 0; b < s.B; b++ {
				for j := 0; j < s.Tk; j++ {
					a.mk[b*s.Tk+j] = float64(float32(a.cfg.Mask(b, j)))
				}
			}
		}
		if a.bwd {
			a.do = normal("DO", g.lenO, 1)
			a.o = make([]float64, g.lenO)
			a.lse = make([]float64, s.B*s.H*s.Tq)
			q, k, v := a.qkvSlices()
			refAttention(g, q, k, v, a.mk, a.o, a.lse)
			for i := range a.o {
				a.o[i] = float64(float32(a.o[i]))
			}
			for i := range a.lse {
				a.lse[i] = float64(float32(a.lse[i]))
			}
		}
	})
}

func (a *attnData) qkvSlices() (q, k, v []float64) {
	if a.cfg.Fused {
		return a.qkv, a.qkv, a.qkv
	}
	return a.qkv, a.k, a.v
}

func (a *attnData) fill(get func() []float64) Fill {
	return Func(func(i int) float64 {
		a.gen()
		return get()[i]
	})
}

var (
	attnMemoMu sync.Mutex
	attnMemo   = map[string][][]float64{}
)

// memoRef runs ref (which writes the outputs) once per case name and replays
// its outputs afterwards: every backend sees the same inputs, and the float64
// references of the BLIP shapes take seconds.
func memoRef(name string, outs []int, ref func(t [][]float64)) func(t [][]float64) {
	return func(t [][]float64) {
		attnMemoMu.Lock()
		got, ok := attnMemo[name]
		attnMemoMu.Unlock()
		if !ok {
			ref(t)
			got = make([][]float64, len(outs))
			for i, k := range outs {
				got[i] = append([]float64(nil), t[k]...)
			}
			attnMemoMu.Lock()
			attnMemo[name] = got
			attnMemoMu.Unlock()
		}
		for i, k := range outs {
			copy(t[k], got[i])
		}
	}
}

// forEachHead runs f for every (b, h) on all cores.
func forEachHead(B, H int, f func(b, h int)) {
	n := B * H
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bh := range next {
				f(bh/H, bh%H)
			}
		}()
	}
	wg.Wait()
}

// refScores is s[i, j] for the visible keys of query i (float64), and their
// count.
func refScores(g attnGeom, q, k, mask []float64, b, h, i int, z []float64) int {
	s := g.s
	scale := float64(s.ScaleValue())
	n := s.Tk
	if s.Causal {
		n = max(0, min(s.Tk, i+s.Tk-s.Tq+1))
	}
	for j := 0; j < n; j++ {
		var acc float64
		qo, ko := g.q.at(b, i, h, 0, s.D), g.k.at(b, j, h, 0, s.D)
		for d := 0; d < s.D; d++ {
			acc += q[qo+d] * k[ko+d]
		}
		z[j] = scale * acc
		if mask != nil {
			z[j] += mask[b*s.Tk+j]
		}
	}
	return n
}

// refAttention is the float64 forward: O (and LSE, if not nil). A row with
// no visible key (all -Inf) gives zeros and LSE +Inf.
func refAttention(g attnGeom, q, k, v, mask, o, lse []float64) {
	refAttentionP(g, q, k, v, mask, o, lse, nil)
}

// refAttentionP is refAttention with each probability passed through pw
// (when not nil) where it weights V; the row sum adds it as it is.
func refAttentionP(g attnGeom, q, k, v, mask, o, lse []float64, pw func(float64) float64) {
	s := g.s
	forEachHead(s.B, s.H, func(b, h int) {
		z := make([]float64, s.Tk)
		acc := make([]float64, s.D)
		for i := 0; i < s.Tq; i++ {
			n := refScores(g, q, k, mask, b, h, i, z)
			m := math.Inf(-1)
			for _, x := range z[:n] {
				m = math.Max(m, x)
			}
			oo := g.o.at(b, i, h, 0, s.D)
			li := (b*s.H+h)*s.Tq + i
			if math.IsInf(m, -1) {
				for d := 0; d < s.D; d++ {
					o[oo+d] = 0
				}
				if lse != nil {
					lse[li] = math.Inf(1)
				}
				continue
			}
			clear(acc)
			var sum float64
			for j := 0; j < n; j++ {
				p := math.Exp(z[j] - m)
				sum += p
				if pw != nil {
					p = pw(p)
				}
				vo := g.v.at(b, j, h, 0, s.D)
				for d := range acc {
					acc[d] += p * v[vo+d]
				}
			}
			for d := range acc {
				o[oo+d] = acc[d] / sum
			}
			if lse != nil {
				lse[li] = m + math.Log(sum)
			}
		}
	})
}

// refAttentionBackward is the float64 backward of gpu.AttentionBackward from
// the given O and LSE (P = exp(s - LSE), Delta = rowsum(DO*O)). dq, dk, dv
// are laid out like q, k, v.
func refAttentionBackward(g attnGeom, q, k, v, o, do, lse, mask, dq, dk, dv []float64) {
	s := g.s
	scale := float64(s.ScaleValue())
	forEachHead(s.B, s.H, func(b, h int) {
		z := make([]float64, s.Tk)
		dK := make([]float64, s.Tk*s.D)
		dV := make([]float64, s.Tk*s.D)
		dQ := make([]float64, s.D)
		for i := 0; i < s.Tq; i++ {
			clear(dQ)
			l := lse[(b*s.H+h)*s.Tq+i]
			if !math.IsInf(l, 1) {
				n := refScores(g, q, k, mask, b, h, i, z)
				qo, oo := g.q.at(b, i, h, 0, s.D), g.o.at(b, i, h, 0, s.D)
				var delta float64
				for d := 0; d < s.D; d++ {
					delta += do[oo+d] * o[oo+d]
				}
				for j := 0; j < n; j++ {
					p := math.Exp(z[j] - l)
					ko, vo := g.k.at(b, j, h, 0, s.D), g.v.at(b, j, h, 0, s.D)
					var dp float64
					for d := 0; d < s.D; d++ {
						dp += do[oo+d] * v[vo+d]
						dV[j*s.D+d] += p * do[oo+d]
					}
					ds := p * (dp - delta) * scale
					for d := 0; d < s.D; d++ {
						dQ[d] += ds * k[ko+d]
						dK[j*s.D+d] += ds * q[qo+d]
					}
				}
			}
			copy(dq[g.q.at(b, i, h, 0, s.D):][:s.D], dQ)
		}
		for j := 0; j < s.Tk; j++ {
			copy(dk[g.k.at(b, j, h, 0, s.D):][:s.D], dK[j*s.D:(j+1)*s.D])
			copy(dv[g.v.at(b, j, h, 0, s.D):][:s.D], dV[j*s.D:(j+1)*s.D])
		}
	})
}

const (
	attnTol    = 2e-5
	attnBwdTol = 1e-4
)

// attentionCase is the forward case of c.
func attentionCase(name string, c attnCfg) Case {
	name = "attention/" + name
	g := geom(c)
	a := &attnData{name: name, cfg: c, g: g}
	s := g.s
	var ts []Tensor
	if c.Fused {
		ts = append(ts, f32("QKV", g.lenQ, a.fill(func() []float64 { return a.qkv })))
	} else {
		ts = append(ts,
			f32("Q", g.lenQ, a.fill(func() []float64 { return a.qkv })),
			f32("K", g.lenK, a.fill(func() []float64 { return a.k })),
			f32("V", g.lenV, a.fill(func() []float64 { return a.v })))
	}
	for i := range ts {
		ts[i].DType = c.QType // the harness rounds the data to it
	}
	if c.Mask != nil {
		ts = append(ts, f32("Mask", s.B*s.Tk, a.fill(func() []float64 { return a.mk })))
	}
	iO := len(ts)
	ts = append(ts, Tensor{Name: "O", DType: c.OType, Len: g.lenO, Fill: Const(nan), Out: true})
	if c.OType != gpu.F32 {
		ts[iO].Tol = attnTol + storedUnit(c.OType)
	}
	if !c.NoLSE {
		ts = append(ts, f32("LSE", s.B*s.H*s.Tq, Const(nan)).out())
	}
	for i := range ts {
		ts[i].Off = c.Off
	}
	outs := []int{iO}
	if !c.NoLSE {
		outs = append(outs, iO+1)
	}
	return Case{
		Name: name, Kernel: "attention", Tol: attnTol, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			call := gpu.Attention{AttentionShape: s}
			var rest []gpu.View
			call.Q, call.K, call.V, rest = g.qkvViews(c.Fused, v)
			if c.Mask != nil {
				call.Mask, rest = rest[0], rest[1:]
			}
			call.O = rest[0]
			if !c.NoLSE {
				call.LSE = rest[1]
			}
			return call
		},
		Ref: memoRef(name, outs, func(t [][]float64) {
			var q, k, v []float64
			if c.Fused {
				q, k, v = t[0], t[0], t[0]
			} else {
				q, k, v = t[0], t[1], t[2]
			}
			var mask, lse []float64
			if c.Mask != nil {
				mask = t[iO-1]
			}
			if !c.NoLSE {
				lse = t[iO+1]
			}
			refAttention(g, q, k, v, mask, t[iO], lse)
		}),
	}
}

// attentionBwdCase is the backward case of c, with a random DO and the exact
// O and LSE of the forward as inputs.
func attentionBwdCase(name string, c attnCfg) Case {
	return attentionBwdCaseRef(name, c, refAttentionBackward)
}

// attnBwdRef is a float64 reference of the backward: it writes dq, dk, dv
// (which alias, as q, k and v do, where the case is fused).
type attnBwdRef func(g attnGeom, q, k, v, o, do, lse, mask, dq, dk, dv []float64)

// attentionBwdCaseRef is attentionBwdCase with the reference ref (the F16
// cases' rounds as AttentionBackward.F16 does).
func attentionBwdCaseRef(name string, c attnCfg, ref attnBwdRef) Case {
	name = "attention_bwd/" + name
	g := geom(c)
	a := &attnData{name: name, cfg: c, g: g, bwd: true}
	s := g.s
	var ts []Tensor
	if c.Fused {
		ts = append(ts, f32("QKV", g.lenQ, a.fill(func() []float64 { return a.qkv })))
	} else {
		ts = append(ts,
			f32("Q", g.lenQ, a.fill(func() []float64 { return a.qkv })),
			f32("K", g.lenK, a.fill(func() []float64 { return a.k })),
			f32("V", g.lenV, a.fill(func() []float64 { return a.v })))
	}
	for i := range ts {
		ts[i].DType = c.QType // the harness rounds the data to it
	}
	iO := len(ts)
	ts = append(ts,
		f32("O", g.lenO, a.fill(func() []float64 { return a.o })),
		f32("DO", g.lenO, a.fill(func() []float64 { return a.do })),
		f32("LSE", s.B*s.H*s.Tq, a.fill(func() []float64 { return a.lse })))
	iMask := -1
	if c.Mask != nil {
		iMask = len(ts)
		ts = append(ts, f32("Mask", s.B*s.Tk, a.fill(func() []float64 { return a.mk })))
	}
	iD := len(ts)
	if c.Fused {
		ts = append(ts, f32("DQKV", g.lenQ, Const(nan)).out())
	} else {
		ts = append(ts, f32("DQ", g.lenQ, Const(nan)).out(), f32("DK", g.lenK, Const(nan)).out(), f32("DV", g.lenV, Const(nan)).out())
	}
	for i := range ts {
		ts[i].Off = c.Off
	}
	var outs []int
	for i := iD; i < len(ts); i++ {
		outs = append(outs, i)
	}
	return Case{
		Name: name, Kernel: "attention_bwd", Tol: attnBwdTol, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			call := gpu.AttentionBackward{AttentionShape: s}
			call.Q, call.K, call.V, _ = g.qkvViews(c.Fused, v)
			call.O, call.DO, call.LSE = v[iO], v[iO+1], v[iO+2]
			if iMask >= 0 {
				call.Mask = v[iMask]
			}
			call.DQ, call.DK, call.DV, _ = g.qkvViews(c.Fused, v[iD:])
			return call
		},
		Ref: memoRef(name, outs, func(t [][]float64) {
			var q, k, v, dq, dk, dv []float64
			if c.Fused {
				q, k, v = t[0], t[0], t[0]
				dq, dk, dv = t[iD], t[iD], t[iD]
			} else {
				q, k, v = t[0], t[1], t[2]
				dq, dk, dv = t[iD], t[iD+1], t[iD+2]
			}
			var mask []float64
			if iMask >= 0 {
				mask = t[iMask]
			}
			ref(g, q, k, v, t[iO], t[iO+1], t[iO+2], mask, dq, dk, dv)
		}),
	}
}

func attentionCases() []Case {
	var cs []Case
	both := func(name string, c attnCfg) {
		cs = append(cs, attentionCase(name, c), attentionBwdCase(name, c))
	}
	sh := func(b, h, tq, tk, d int) gpu.AttentionShape {
		return gpu.AttentionShape{B: b, H: h, Tq: tq, Tk: tk, D: d}
	}
	causal := func(s gpu.AttentionShape) gpu.AttentionShape { s.Causal = true; return s }
	ninf := math.Inf(-1)
	fmin := -math.MaxFloat32

	// Tiny and odd shapes.
	both("1x1_d16", attnCfg{AttentionShape: sh(1, 1, 1, 1, 16)})
	both("t7_d16_h3_mask", attnCfg{AttentionShape: sh(2, 3, 7, 7, 16), Mask: padMask(-10000, 7, 4)})
	both("t33_d64_causal", attnCfg{AttentionShape: causal(sh(1, 2, 33, 33, 64))})
	both("t33_d128", attnCfg{AttentionShape: sh(2, 2, 33, 33, 128), Mask: padMask(ninf, 33, 20)})
	both("t9_d6_odd", attnCfg{AttentionShape: sh(2, 3, 9, 9, 6), Mask: padMask(-10000, 9, 5)})
	both("t70_d40_causal_mask", attnCfg{AttentionShape: causal(sh(2, 2, 70, 70, 40)), Mask: padMask(-10000, 70, 61)})
	both("t33_d32_scale", attnCfg{AttentionShape: gpu.AttentionShape{B: 1, H: 2, Tq: 33, Tk: 65, D: 32, Scale: 0.3}})
	both("t40_large_values", attnCfg{AttentionShape: sh(2, 2, 40, 40, 64), Std: 4, Mask: padMask(-10000, 40, 13)})

	// ViT-B/16 at 384 px: 577 tokens, 12 heads of 64, no mask.
	both("vit_b2_t577", attnCfg{AttentionShape: sh(2, 12, 577, 577, 64)})
	cs = append(cs, attentionCase("vit_h2_t577_nolse", attnCfg{AttentionShape: sh(1, 2, 577, 577, 64), NoLSE: true}))

	// Text encoder: padded captions (BERT's -10000 mask), T = 1, 30, 35, 40.
	both("text_t1", attnCfg{AttentionShape: sh(2, 12, 1, 1, 64), Mask: padMask(-10000, 1, 1)})
	both("text_t30_mask", attnCfg{AttentionShape: sh(3, 12, 30, 30, 64), Mask: padMask(-10000, 30, 17, 9)})
	both("text_t35_mask", attnCfg{AttentionShape: sh(2, 12, 35, 35, 64), Mask: padMask(-10000, 35, 12)})
	both("text_t40_mask_fmin", attnCfg{AttentionShape: sh(2, 12, 40, 40, 64), Mask: padMask(fmin, 31, 40)})
	// Text decoder: causal with padding; decoding steps with a KV cache.
	both("decoder_t35_causal_mask", attnCfg{AttentionShape: causal(sh(2, 12, 35, 35, 64)), Mask: padMask(-10000, 35, 20)})
	both("decode_tq1_tk40_causal", attnCfg{AttentionShape: causal(sh(2, 12, 1, 40, 64)), Mask: padMask(-10000, 40, 33)})
	both("decode_tq5_tk40_causal", attnCfg{AttentionShape: causal(sh(2, 4, 5, 40, 64))})
	// Causal with Tq > Tk: the first queries see no key (zero rows).
	both("causal_tq7_tk4_empty_rows", attnCfg{AttentionShape: causal(sh(1, 2, 7, 4, 16))})

	// Cross-attention: text queries over the image tokens.
	both("cross_tq35_tk577", attnCfg{AttentionShape: sh(2, 12, 35, 577, 64)})
	both("cross_tq35_tk577_mask", attnCfg{AttentionShape: sh(2, 4, 35, 577, 64), Mask: padMask(ninf, 577, 300)})

	// Layouts: fused qkv, strided O with gaps, explicit batch strides,
	// unaligned views (scalar loads).
	fused := sh(2, 4, 35, 35, 64)
	fused.OTok = 4*64 + 8
	fused.OBatch = int64(35*fused.OTok + 12)
	both("fused_qkv_strided_o", attnCfg{AttentionShape: fused, Fused: true, Mask: padMask(-10000, 35, 22)})
	both("fused_qkv_t577_causal", attnCfg{AttentionShape: causal(sh(1, 3, 577, 577, 64)), Fused: true})
	strided := gpu.AttentionShape{B: 3, H: 2, Tq: 13, Tk: 21, D: 64, QTok: 130, KTok: 200, VTok: 128, OTok: 136,
		QBatch: 13*130 + 7, KBatch: 21*200 + 1, VBatch: 21*128 + 4, OBatch: 13*136 + 3}
	both("strided_batches", attnCfg{AttentionShape: strided, Mask: padMask(-10000, 21, 5, 14)})
	both("unaligned_off3", attnCfg{AttentionShape: sh(2, 3, 35, 35, 64), Off: 3, Mask: padMask(-10000, 35, 9)})

	// Decoding against many keys (Tq <= 4, Tk >= 128: the Vulkan backend's
	// split-K path): beam-3 cross-attention over 577 image tokens with
	// chunks masked whole and in part, causal self-attention over a long
	// cache, odd and unaligned head dimensions, strided layouts, empty rows.
	fwd := func(name string, c attnCfg) { cs = append(cs, attentionCase(name, c)) }
	fwd("split_cross_b3_tq1_tk577_mask", attnCfg{AttentionShape: sh(3, 12, 1, 577, 64), Mask: padMask(ninf, 577, 300, 130)})
	fwd("split_cross_tq1_tk577_nolse", attnCfg{AttentionShape: sh(2, 12, 1, 577, 64), NoLSE: true})
	fwd("split_self_tq1_tk130_causal", attnCfg{AttentionShape: causal(sh(2, 4, 1, 130, 64)), Mask: padMask(-10000, 130, 100)})
	fwd("split_tq4_tk129_causal_d40", attnCfg{AttentionShape: causal(sh(2, 3, 4, 129, 40))})
	fwd("split_tq3_tk200_d6_off3", attnCfg{AttentionShape: sh(2, 3, 3, 200, 6), Off: 3, Mask: padMask(-10000, 200, 77)})
	fwd("split_tq2_tk150_d128_large", attnCfg{AttentionShape: sh(1, 2, 2, 150, 128), Std: 4})
	fwd("split_fully_masked_batch", attnCfg{AttentionShape: sh(2, 2, 1, 128, 32), Mask: padMask(ninf, 128, 0)})
	splitStrided := gpu.AttentionShape{B: 3, H: 2, Tq: 2, Tk: 150, D: 64, QTok: 132, KTok: 200, VTok: 136, OTok: 140,
		QBatch: 2*132 + 4, KBatch: 150*200 + 8, VBatch: 150*136 + 4, OBatch: 2*140 + 12}
	fwd("split_strided_batches", attnCfg{AttentionShape: splitStrided, Mask: padMask(-10000, 150, 149, 64)})
	// Keys in one chunk (Tk <= 64: the split kernel's direct pass): a
	// decoder's self-attention at each length, beams over a strided cache,
	// a full chunk, one key past it (two chunks, the second of one key),
	// causal rows that see no key, fully masked rows, odd and unaligned.
	fwd("direct_self_tq1_tk1", attnCfg{AttentionShape: causal(sh(1, 12, 1, 1, 64))})
	fwd("direct_self_tq1_tk21_causal_mask", attnCfg{AttentionShape: causal(sh(2, 12, 1, 21, 64)), Mask: padMask(-10000, 21, 18)})
	fwd("direct_tq4_tk64_full_chunk", attnCfg{AttentionShape: sh(2, 3, 4, 64, 64), Std: 4})
	fwd("split_tq3_tk65_last_chunk_1", attnCfg{AttentionShape: sh(2, 3, 3, 65, 32), Mask: padMask(-10000, 65, 60)})
	fwd("direct_causal_tq4_tk2_empty_rows", attnCfg{AttentionShape: causal(sh(1, 2, 4, 2, 16))})
	fwd("direct_fully_masked_batch", attnCfg{AttentionShape: sh(2, 2, 2, 30, 32), Mask: padMask(ninf, 30, 0)})
	fwd("direct_tq3_tk9_d6_off3_nolse", attnCfg{AttentionShape: sh(2, 3, 3, 9, 6), Off: 3, NoLSE: true})
	beamCache := gpu.AttentionShape{B: 3, H: 4, Tq: 1, Tk: 20, D: 64, Causal: true, KTok: 256, VTok: 256, KBatch: 2 * 4 * 24 * 256, VBatch: 2 * 4 * 24 * 256}
	fwd("direct_beam_cache_strided", attnCfg{AttentionShape: beamCache})

	// Fully masked rows: every key of batch 1 is -Inf.
	both("fully_masked_batch", attnCfg{AttentionShape: sh(2, 3, 9, 12, 32), Mask: padMask(ninf, 12, 0)})
	both("fully_masked_causal", attnCfg{AttentionShape: causal(sh(2, 3, 20, 20, 64)), Mask: padMask(ninf, 20, 0)})
	return cs
}

// attentionErrorCases are the calls every backend must refuse.
func attentionErrorCases() []ErrorCase {
	shape := gpu.AttentionShape{B: 2, H: 2, Tq: 3, Tk: 5, D: 4}
	fwd := func(e *Env) gpu.Attention { // a valid call
		return gpu.Attention{Q: e.F32(2 * 3 * 8), K: e.F32(2 * 5 * 8), V: e.F32(2 * 5 * 8), O: e.F32(2 * 3 * 8), AttentionShape: shape}
	}
	bwd := func(e *Env) gpu.AttentionBackward {
		return gpu.AttentionBackward{Q: e.F32(48), K: e.F32(80), V: e.F32(80), O: e.F32(48), DO: e.F32(48), LSE: e.F32(12),
			DQ: e.F32(48), DK: e.F32(80), DV: e.F32(80), AttentionShape: shape}
	}
	return []ErrorCase{
		{"q_too_small", "attention", func(e *Env) gpu.Call { a := fwd(e); a.Q = e.F32(47); return a }},
		{"o_i32", "attention", func(e *Env) gpu.Call { a := fwd(e); a.O = e.I32(48); return a }},
		{"v_unset", "attention", func(e *Env) gpu.Call { a := fwd(e); a.V = gpu.View{}; return a }},
		{"k_outside_buffer", "attention", func(e *Env) gpu.Call { a := fwd(e); a.K = e.Outside(80); return a }},
		{"mask_too_small", "attention", func(e *Env) gpu.Call { a := fwd(e); a.Mask = e.F32(9); return a }},
		{"lse_too_small", "attention", func(e *Env) gpu.Call { a := fwd(e); a.LSE = e.F32(11); return a }},
		{"d_too_large", "attention", func(e *Env) gpu.Call {
			a := fwd(e)
			a.D = gpu.MaxAttentionHeadDim + 4
			n := 2 * 5 * 2 * a.D
			a.Q, a.K, a.V, a.O = e.F32(n), e.F32(n), e.F32(n), e.F32(n)
			return a
		}},
		{"tk_zero", "attention", func(e *Env) gpu.Call { a := fwd(e); a.Tk = 0; return a }},
		{"token_stride_lt_hd", "attention", func(e *Env) gpu.Call { a := fwd(e); a.OTok = 7; return a }},
		{"batches_overlap", "attention", func(e *Env) gpu.Call { a := fwd(e); a.KBatch = 20; return a }},
		{"scale_nan", "attention", func(e *Env) gpu.Call { a := fwd(e); a.Scale = float32(math.NaN()); return a }},
		{"v_foreign", "attention", func(e *Env) gpu.Call { a := fwd(e); a.V = e.Foreign(gpu.F32, 80); return a }},
		{"all_foreign", "attention", func(e *Env) gpu.Call {
			return gpu.Attention{Q: e.Foreign(gpu.F32, 48), K: e.Foreign(gpu.F32, 80), V: e.Foreign(gpu.F32, 80), O: e.Foreign(gpu.F32, 48), AttentionShape: shape}
		}},

		{"lse_unset", "attention_bwd", func(e *Env) gpu.Call { a := bwd(e); a.LSE = gpu.View{}; return a }},
		{"dk_too_small", "attention_bwd", func(e *Env) gpu.Call { a := bwd(e); a.DK = e.F32(79); return a }},
		{"do_too_small", "attention_bwd", func(e *Env) gpu.Call { a := bwd(e); a.DO = e.F32(40); return a }},
		{"dv_f16", "attention_bwd", func(e *Env) gpu.Call { a := bwd(e); a.DV = e.V(gpu.F16, 80); return a }},
		{"mask_too_small", "attention_bwd", func(e *Env) gpu.Call { a := bwd(e); a.Mask = e.F32(5); return a }},
		{"h_zero", "attention_bwd", func(e *Env) gpu.Call { a := bwd(e); a.H = 0; return a }},
		{"dq_foreign", "attention_bwd", func(e *Env) gpu.Call { a := bwd(e); a.DQ = e.Foreign(gpu.F32, 48); return a }},
	}
}

// String describes a config (for test logs).
func (c attnCfg) String() string {
	return fmt.Sprintf("%v fused=%v off=%d", c.AttentionShape, c.Fused, c.Off)
}
