package vk

import "blip/gpu"

// The attention backward on tensor cores (shaders/attention_coop_bwd.glsl)
// for calls with F16, on devices that run the tensor-core forward
// (attention_coop.go: the same form, fragment size, subgroup and head
// dimension limits). Its passes are attention_bwd.comp's (a dQ pass over
// query blocks, then dK and dV over key blocks, through one binding or
// two passes), with 64 rows per workgroup and attention_bwd.comp's push
// constants, but two pipelines per head size instead of four: the dK+dV
// pass writes what push-constant flags ask for. Like the forward it fetches
// the walked tiles as vec4s ahead of use where the layouts allow. Other F16
// calls (D = 128, devices without the tensor-core GEMM) run on
// attention_bwd.comp's F16 specialization, which rounds the same way.

const (
	attnCoopBwdRows = 64
	// The shader's shared memory: sH, sDS, sP (f16), sF and three arrays
	// of 64 floats.
	attnCoopBwdShared = 2*64*72 + 4*64*36 + 2*2*64*40 + 3*4*64
)

// attnCoopBwdShader is the tensor-core backward shader matching the
// device's tensor-core forward, or "".
func (d *Device) attnCoopBwdShader() string {
	if f := d.attnCoopShader(); f != "" {
		return map[string]string{
			"attention_coop_khr":  "attention_coop_bwd_khr",
			"attention_coop8_khr": "attention_coop_bwd8_khr",
			"attention_coop":      "attention_coop_bwd",
		}[f]
	}
	return ""
}

// useAttnCoopBwd reports whether a runs on attention_coop_bwd.
func (d *Device) useAttnCoopBwd(a gpu.AttentionBackward) bool {
	return a.F16 && a.Q.DType != gpu.BF16 && attnCoopBwdShared <= d.info.SharedMemBytes && d.attnCoopBwdShader() != "" &&
		d.useAttnCoop(gpu.Attention{F16: true, AttentionShape: a.AttentionShape})
}

// attentionCoopBwd is a's dispatches on attention_coop_bwd: D padded to
// 16, 32 or 64 as in the forward.
func attentionCoopBwd(d *Device, a gpu.AttentionBackward, nb int, ts []attnTensorView) []dispatch {
	dp := uint32(16)
	for int(dp) < a.D {
		dp *= 2
	}
	wg := 4 * uint32(d.info.SubgroupSize)
	sw := b2u(d.roundsInShader())
	q16 := b2u(a.Q.DType == gpu.F16) // 16-bit activations
	tile := attnTile{rows: attnCoopBwdRows}
	return d.attnBwdDispatches(a, nb, ts, d.attnCoopBwdShader(), tile, tile, func(mode uint32, _ attnTile, vec bool) ([]uint32, uint32) {
		// Flags: 4 and 8 which of dK and dV the dK/dV pass writes, 16 the
		// walked tiles fetched as vec4s (attnVec: D, the offsets and the
		// strides multiples of 4).
		fl := 16 * b2u(vec)
		switch mode {
		case attnModeDQ:
			return []uint32{wg, dp, 0, sw, q16}, fl
		case attnModeDV:
			return []uint32{wg, dp, 1, sw, q16}, fl | 8
		case attnModeDK:
			return []uint32{wg, dp, 1, sw, q16}, fl | 4
		}
		return []uint32{wg, dp, 1, sw, q16}, fl | 4 | 8
	})
}
