package vk

import "strings"

// The tensor-core shaders (gemm_coop.glsl, attention_coop.glsl) round
// their operands to f16 by the hardware conversion under the
// RoundingModeRTE execution mode for 16-bit results (SPV_KHR_float_controls),
// which makes the conversion gpu.Round(F16, x). A device that does not list
// shaderRoundingModeRTEFloat16 must not get a module declaring that mode:
// for it the mode, its capability and extension are stripped from the
// module (stripRTE) and the shaders' specialization constant SWR turns on
// the integer rounding of gemm_round.glsl, after which the conversion is
// exact whatever rounding the device uses. BLIP_COOP_SWROUND=1 takes that
// path on any device (tests run it on lavapipe, which has the mode).

// SPIR-V opcodes and enumerants stripRTE looks for.
const (
	spvOpExtension       = 10
	spvOpCapability      = 17
	spvOpExecutionMode   = 16
	spvModeRoundingRTE   = 4462
	spvCapRoundingRTE    = 4467
	spvFloatControlsName = "SPV_KHR_float_controls"
)

// roundsInShader reports whether d's tensor-core shaders round in
// integer arithmetic (SWR): the device lacks RTE for 16-bit results, or a
// test or BLIP_COOP_SWROUND=1 asks for it.
func (d *Device) roundsInShader() bool {
	return !d.phys.rte16 || d.swRound || coopSWRoundEnv
}

// stripRTE returns code (SPIR-V words) without the RoundingModeRTE
// execution modes, their capability and the float-controls extension
// (the module uses no other float control), or code itself when it has
// none.
func stripRTE(code []uint32) []uint32 {
	if len(code) < 5 {
		return code
	}
	out := append([]uint32(nil), code[:5]...)
	changed := false
	for i := 5; i < len(code); {
		n := int(code[i] >> 16)
		op := code[i] & 0xffff
		if n == 0 || i+n > len(code) {
			return code // malformed: leave it to the driver's validation
		}
		in := code[i : i+n]
		drop := op == spvOpExecutionMode && n >= 3 && in[2] == spvModeRoundingRTE ||
			op == spvOpCapability && n == 2 && in[1] == spvCapRoundingRTE ||
			op == spvOpExtension && spvString(in[1:]) == spvFloatControlsName
		if drop {
			changed = true
		} else {
			out = append(out, in...)
		}
		i += n
	}
	if !changed {
		return code
	}
	return out
}

// spvString decodes a SPIR-V literal string (nul-terminated, little-endian
// words).
func spvString(w []uint32) string {
	var b strings.Builder
	for _, x := range w {
		for s := 0; s < 32; s += 8 {
			c := byte(x >> s)
			if c == 0 {
				return b.String()
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}
