package vk

import (
	"os"

	"blip/gpu"
)

// Attention on tensor cores (shaders/attention_coop.glsl) for calls with
// F16 (half-precision products), on devices that run the cooperative-
// matrix GEMM (d.coop). It uses the GEMM's form and fragment size (the
// KHR form where d.coop is one of the *_khr shaders; fragments of 8 with
// gemm_coop8_khr, lavapipe's shape, and of 16 otherwise), so the device
// features it needs are those the GEMM enabled.
//
// What it takes: head dimensions up to attnCoopMaxD (BLIP's 64, the tiny
// models' 16; others are zero-padded to 16, 32 or 64), subgroups of 8 to
// 64 invocations (its workgroup is four of them, 64 query rows, and its
// softmax gives each invocation at most four rows), and the shared memory
// below. Every layout, offset, mask, causal shape and Tq, Tk of
// gpu.Attention is supported: K and V tiles are staged as vec4s where
// their strides and offsets allow (attnCoopVec), else element by element,
// bounds-checked either way. Other
// F16 calls (D = 128, say) run on attention.comp, which rounds the same way
// (its F16 specialization), as they do on devices without the GEMM.
// Decoding's few queries (Tq <= 4) take the split kernel instead, F16 too
// (attention_split.go): a 64-row tile here would hold one query.
//
// BLIP_ATTN_COOP=0 turns it off, and the backward (attention_coop_bwd.go):
// F16 calls then run on attention.comp and attention_bwd.comp.

const (
	attnCoopMaxD = 64
	// The shader's shared memory: sH, sP (f16), sF, sMk, sInv (fp32).
	attnCoopShared = 2*64*72 + 2*64*40 + 4*64*68 + 4*32 + 4*64
)

var attnCoopOff = os.Getenv("BLIP_ATTN_COOP") == "0"

// attnCoopTPR, when not 0, overrides the invocations per softmax row
// (the shader's TPR) where it is valid for the workgroup: the tests set it
// to run on lavapipe's workgroups of 32 the shared-memory reductions that
// larger workgroups (NVIDIA's 128: TPR 2) take.
var attnCoopTPR uint32

// attnCoopRowThreads is the shader's TPR for a workgroup of wg: wg / 64
// (at least 1), or attnCoopTPR where that lies in [wg/64, wg/16].
func attnCoopRowThreads(wg uint32) uint32 {
	tpr := max(1, wg/64)
	if o := attnCoopTPR; o != 0 && o&(o-1) == 0 && o >= tpr && 16*o <= wg {
		tpr = o
	}
	return tpr
}

// attnCoopShader is the tensor-core attention shader matching the device's
// cooperative-matrix GEMM, with its fragment size, or "" where there is
// none.
func (d *Device) attnCoopShader() string {
	switch d.coop {
	case "gemm_coop_khr":
		return "attention_coop_khr"
	case "gemm_coop8_khr":
		return "attention_coop8_khr"
	case "gemm_coop":
		return "attention_coop"
	}
	return ""
}

// useAttnCoop reports whether a runs on attention_coop.
func (d *Device) useAttnCoop(a gpu.Attention) bool {
	sg := d.info.SubgroupSize
	return a.F16 && a.O.DType != gpu.BF16 && a.Q.DType != gpu.BF16 && !attnCoopOff && d.attnCoopShader() != "" &&
		a.D <= attnCoopMaxD && sg >= 8 && sg <= 64 && sg&(sg-1) == 0 &&
		attnCoopShared <= d.info.SharedMemBytes
}

// attentionCoop dispatches one workgroup per (64 queries, head, batch),
// split into grids and batch chunks as attention.comp's dispatches are;
// the push constants are attention.comp's.
func attentionCoop(d *Device, a gpu.Attention, nb int, ts []attnTensorView) []dispatch {
	const rows = 64
	// D padded to 16, 32 or 64: three pipelines at most (each compiles
	// for seconds on lavapipe), at most 2x the work of an exact fit.
	dp := uint32(16)
	for int(dp) < a.D {
		dp *= 2
	}
	wg := 4 * uint32(d.info.SubgroupSize)
	spec := []uint32{wg, dp, attnCoopRowThreads(wg), b2u(d.roundsInShader()), b2u(a.O.DType == gpu.F16), b2u(a.Q.DType == gpu.F16)}
	tiles := int(ceilDiv(int64(a.Tq), rows))
	ds := d.attnDispatches(a, nb, ts, tiles, d.attnCoopShader(), func(_, _, _, _ gpu.View) []uint32 { return spec })
	for i := range ds {
		attnCoopVec(ds[i].push)
	}
	return ds
}

// attnCoopVec sets the shader's flag 8 (K and V staged as vec4s) in an
// attention.comp push block where that is valid: D, the binding offsets
// and the token and batch strides of K and V all multiples of 4 (a head's
// columns then start on a vec4, and so does every row).
func attnCoopVec(push []uint32) {
	const pD, pOffK, pOffV, pTokK, pTokV, pBatK, pBatV, pFlags = 3, 5, 6, 11, 12, 15, 16, 19
	for _, i := range []int{pD, pOffK, pOffV, pTokK, pTokV, pBatK, pBatV} {
		if push[i]%4 != 0 {
			return
		}
	}
	push[pFlags] |= 8
}
