package paritytest

import (
	"math"

	"blip/gpu"
)

// Parity cases of gpu.Attention with F16 (half-precision products, what
// the Vulkan backend runs on tensor cores: gpu/vk/attention_coop.go, and
// on attention.comp's F16 specialization elsewhere). The inputs are those
// of the fp32 cases (fp32 data, rounded inside the kernel); the float64
// reference rounds Q, K, V and the probabilities to f16 as F16 defines.
//
// Tolerance. The products of f16 values are exact in fp32, so two correct
// backends differ by their fp32 summation order (attnTol covers that for
// the fp32 kernel) and, through it, by a probability that lies that close
// to an f16 rounding boundary and rounds to the other side: one f16 unit,
// at most 2^-11 p[j] for p[j] <= 1. Such flips in a row move its output by
// at most 2^-11 * sum_j p[j] |V[j]| / l over the flipped keys, where the
// row maximum's key (p = 1 exactly, never flipped) keeps that sum below
// (l - 1) / l * max |V|: at most 2^-11 * 5 for V ~ N(0, 1) (|V| < 5 over a
// case's draws). attnF16Tol is that bound; what it guards against (a wrong
// mask, row, stride, tile or maximum) errs by 1e-2 and more.
//
// Two cases are built so that no flip is possible and compare at 1e-5
// (against an output scale of at least 1, the fp32 summation of at most 40
// terms, and of one 16-term dot product in LSE, errs by a few 1e-7):
// f16_tk1_exact (one key: p = 1 and
// O = f16(V) exactly; LSE = Scale * f16(Q) . f16(K) shows the rounding of Q
// and K, which moves it by ~2e-4) and f16_p_rounding (Q = 0, so the scores
// are the mask, chosen so that every probability lies a quarter of an f16
// unit or more from a rounding boundary: unrounded probabilities would move
// O by ~2e-4).

func init() {
	register(attentionF16Cases)
}

const (
	attnF16Tol      = 5.0 / 2048
	attnF16ExactTol = 1e-5
)

// refAttentionF16 is the float64 forward with F16's roundings: Q, K, V
// rounded to f16, each probability exp(s - m) (m the row maximum) rounded
// to f16 (through fp32, as the backends hold it) in the weighted sum while
// the row sum adds it unrounded.
func refAttentionF16(g attnGeom, q, k, v, mask, o, lse []float64) {
	f16 := func(x float64) float64 { return float64(gpu.Round(gpu.F16, float32(x))) }
	round := func(x []float64) []float64 {
		y := make([]float64, len(x))
		for i, e := range x {
			y[i] = f16(e)
		}
		return y
	}
	refAttentionP(g, round(q), round(k), round(v), mask, o, lse, f16)
}

// attentionF16Case is the F16 forward case of c: attentionCase's tensors
// and data, the call with F16 set, refAttentionF16 as the reference. zeroQ
// makes Q all zeros (c must not be Fused).
func attentionF16Case(name string, c attnCfg, tol float64, zeroQ bool) Case {
	cs := attentionCase("f16_"+name, c)
	g := geom(c)
	build := cs.Build
	cs.Build = func(v []gpu.View) gpu.Call {
		call := build(v).(gpu.Attention)
		call.F16 = true
		return call
	}
	cs.Tol = tol
	for i := range cs.Tensors {
		if cs.Tensors[i].Tol != 0 { // a 16-bit O
			cs.Tensors[i].Tol = tol + storedUnit(cs.Tensors[i].DType)
		}
	}
	if zeroQ {
		cs.Tensors[0].Fill = Const(0)
	}
	iO := 3
	if c.Fused {
		iO = 1
	}
	iMask := -1
	if c.Mask != nil {
		iMask = iO
		iO++
	}
	outs := []int{iO}
	if !c.NoLSE {
		outs = append(outs, iO+1)
	}
	cs.Ref = memoRef(cs.Name+" (f16 reference)", outs, func(t [][]float64) {
		q, k, v := t[0], t[0], t[0]
		if !c.Fused {
			k, v = t[1], t[2]
		}
		var mask, lse []float64
		if iMask >= 0 {
			mask = t[iMask]
		}
		if !c.NoLSE {
			lse = t[iO+1]
		}
		refAttentionF16(g, q, k, v, mask, t[iO], lse)
	})
	return cs
}

// f16ExactMask is the mask of f16_p_rounding: with Q = 0 the scores are the
// mask, key 0's is 0 (the row maximum, p = 1), and key j > 0 gets
// p = x * (1 + 2^-12) for an f16 value x = (1 + f/128) * 2^-e with
// f < 29 and 1 <= e <= 6: above x by less than 0.62 of half an f16 unit of
// x (2^-e-11), so more than 0.38 of one half unit (relatively 2^-13,
// against fp32 errors of about 2^-22 in the mask and the exp) from the
// next rounding boundary: p rounds to x on every backend. Keys from 30 on
// are removed in batch 1.
func f16ExactMask(b, j int) float64 {
	if j == 0 {
		return 0
	}
	if b == 1 && j >= 30 {
		return math.Inf(-1)
	}
	x := (1 + float64(j%29)/128) * math.Ldexp(1, -(1+j%6))
	return math.Log(x * (1 + math.Ldexp(1, -12)))
}

func attentionF16Cases() []Case {
	var cs []Case
	add := func(name string, c attnCfg) {
		cs = append(cs, attentionF16Case(name, c, attnF16Tol, false))
	}
	sh := func(b, h, tq, tk, d int) gpu.AttentionShape {
		return gpu.AttentionShape{B: b, H: h, Tq: tq, Tk: tk, D: d}
	}
	causal := func(s gpu.AttentionShape) gpu.AttentionShape { s.Causal = true; return s }
	ninf := math.Inf(-1)

	// No flip possible: the roundings themselves are checked.
	cs = append(cs,
		attentionF16Case("tk1_exact", attnCfg{AttentionShape: sh(2, 3, 5, 1, 16)}, attnF16ExactTol, false),
		attentionF16Case("p_rounding", attnCfg{AttentionShape: sh(2, 2, 9, 40, 64), Mask: f16ExactMask}, attnF16ExactTol, true))

	// BLIP's shapes: ViT-B self-attention (577 tokens, 12 heads of 64),
	// the text decoder (causal, padded), decoding steps over the image
	// tokens and over a cache, cross-attention, the tiny models' D = 16.
	add("vit_t577", attnCfg{AttentionShape: sh(1, 12, 577, 577, 64)})
	add("fused_qkv_t577_causal", attnCfg{AttentionShape: causal(sh(1, 3, 577, 577, 64)), Fused: true})
	add("decoder_t35_causal_mask", attnCfg{AttentionShape: causal(sh(2, 12, 35, 35, 64)), Mask: padMask(-10000, 35, 20)})
	add("decode_tq1_tk577_mask", attnCfg{AttentionShape: sh(3, 12, 1, 577, 64), Mask: padMask(ninf, 577, 300, 130)})
	add("decode_tq1_tk130_causal", attnCfg{AttentionShape: causal(sh(2, 4, 1, 130, 64)), Mask: padMask(-10000, 130, 100)})
	add("decode_tq5_tk40_causal", attnCfg{AttentionShape: causal(sh(2, 4, 5, 40, 64))})
	add("cross_tq35_tk577_mask", attnCfg{AttentionShape: sh(2, 4, 35, 577, 64), Mask: padMask(ninf, 577, 300)})
	add("text_t40_mask_fmin", attnCfg{AttentionShape: sh(2, 12, 40, 40, 64), Mask: padMask(-math.MaxFloat32, 31, 40)})
	add("tiny_t7_d16_mask", attnCfg{AttentionShape: sh(2, 4, 7, 7, 16), Mask: padMask(-10000, 7, 4)})

	// Odd sizes and head dimensions (zero-padded on tensor cores; D = 128
	// is past them and runs on attention.comp), large scores, empty rows.
	add("1x1_d16", attnCfg{AttentionShape: sh(1, 1, 1, 1, 16)})
	add("t9_d6_odd", attnCfg{AttentionShape: sh(2, 3, 9, 9, 6), Mask: padMask(-10000, 9, 5)})
	add("t70_d40_causal_mask", attnCfg{AttentionShape: causal(sh(2, 2, 70, 70, 40)), Mask: padMask(-10000, 70, 61)})
	add("t129_tk65_d32_scale_nolse", attnCfg{AttentionShape: gpu.AttentionShape{B: 1, H: 2, Tq: 129, Tk: 65, D: 32, Scale: 0.3}, NoLSE: true})
	add("t33_d128", attnCfg{AttentionShape: sh(2, 2, 33, 33, 128), Mask: padMask(ninf, 33, 20)})
	add("t40_large_values", attnCfg{AttentionShape: sh(2, 2, 40, 40, 64), Std: 4, Mask: padMask(-10000, 40, 13)})
	add("causal_tq7_tk4_empty_rows", attnCfg{AttentionShape: causal(sh(1, 2, 7, 4, 16))})
	add("fully_masked_batch", attnCfg{AttentionShape: sh(2, 3, 9, 12, 32), Mask: padMask(ninf, 12, 0)})

	// Decoding (Tq <= 4: the Vulkan backend's split kernel, F16 since
	// fp16 decoding took it): keys in one chunk and in several, where the
	// probabilities must be rounded after the shift by the row's maximum
	// over all chunks (the p_rounding construction at 1e-5: a shift by a
	// chunk's own maximum rounds other values), then the split cases of the
	// fp32 table.
	cs = append(cs,
		attentionF16Case("p_rounding_decode_one_chunk", attnCfg{AttentionShape: sh(2, 2, 3, 40, 64), Mask: f16ExactMask}, attnF16ExactTol, true),
		attentionF16Case("p_rounding_decode_chunks", attnCfg{AttentionShape: sh(2, 2, 3, 200, 64), Mask: f16ExactMask}, attnF16ExactTol, true))
	add("split_tq4_tk129_causal_d40", attnCfg{AttentionShape: causal(sh(2, 3, 4, 129, 40))})
	add("split_tq3_tk200_d6_off3", attnCfg{AttentionShape: sh(2, 3, 3, 200, 6), Off: 3, Mask: padMask(-10000, 200, 77)})
	add("split_tq2_tk150_d128_large", attnCfg{AttentionShape: sh(1, 2, 2, 150, 128), Std: 4})
	add("split_fully_masked_batch", attnCfg{AttentionShape: sh(2, 2, 1, 128, 32), Mask: padMask(ninf, 128, 0)})
	add("split_tq3_tk65_last_chunk_1", attnCfg{AttentionShape: sh(2, 3, 3, 65, 32), Mask: padMask(-10000, 65, 60)})
	add("direct_self_tq1_tk21_causal_mask", attnCfg{AttentionShape: causal(sh(2, 12, 1, 21, 64)), Mask: padMask(-10000, 21, 18)})
	add("direct_tq4_tk64_full_chunk", attnCfg{AttentionShape: sh(2, 3, 4, 64, 64), Std: 4})
	add("direct_causal_tq4_tk2_empty_rows", attnCfg{AttentionShape: causal(sh(1, 2, 4, 2, 16))})
	add("direct_tq3_tk9_d6_off3_nolse", attnCfg{AttentionShape: sh(2, 3, 3, 9, 6), Off: 3, NoLSE: true})
	splitStrided := gpu.AttentionShape{B: 3, H: 2, Tq: 2, Tk: 150, D: 64, QTok: 132, KTok: 200, VTok: 136, OTok: 140,
		QBatch: 2*132 + 4, KBatch: 150*200 + 8, VBatch: 150*136 + 4, OBatch: 2*140 + 12}
	add("split_strided_batches", attnCfg{AttentionShape: splitStrided, Mask: padMask(-10000, 150, 149, 64)})
	beamCache := gpu.AttentionShape{B: 3, H: 4, Tq: 1, Tk: 20, D: 64, Causal: true, KTok: 256, VTok: 256, KBatch: 2 * 4 * 24 * 256, VBatch: 2 * 4 * 24 * 256}
	add("direct_beam_cache_strided", attnCfg{AttentionShape: beamCache})

	// Layouts: fused qkv with a strided O, explicit batch strides,
	// unaligned views.
	fused := sh(2, 4, 35, 35, 64)
	fused.OTok = 4*64 + 8
	fused.OBatch = int64(35*fused.OTok + 12)
	add("fused_qkv_strided_o", attnCfg{AttentionShape: fused, Fused: true, Mask: padMask(-10000, 35, 22)})
	strided := gpu.AttentionShape{B: 3, H: 2, Tq: 13, Tk: 21, D: 64, QTok: 130, KTok: 200, VTok: 128, OTok: 136,
		QBatch: 13*130 + 7, KBatch: 21*200 + 1, VBatch: 21*128 + 4, OBatch: 13*136 + 3}
	add("strided_batches", attnCfg{AttentionShape: strided, Mask: padMask(-10000, 21, 5, 14)})
	add("unaligned_off3", attnCfg{AttentionShape: sh(2, 3, 35, 35, 64), Off: 3, Mask: padMask(-10000, 35, 9)})
	return cs
}
