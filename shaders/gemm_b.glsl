// The operands of gemm.glsl and gemm_cpu.glsl. The includer defines the
// specialization constant ids GEMM_F16_ID and GEMM_BT_ID first.
//
// F16 (gpu.Gemm.F16): the product reads A and B rounded to f16; each load
// goes through opF16 (A) or LDB/LDB4 (B), which round then. As a
// specialization constant it costs nothing when 0: the rounding is folded
// away and the loads are what they were without it.
//
// B: binding 1, read through LDB(i) (one element) and LDB4(i) (vec4 i,
// elements 4i..4i+3). In the _h builds (HALF_B) its type is the
// specialization constant GEMM_BT_ID (DT_F32, or DT_F16 / DT_BF16 for
// weights stored in 16 bits, widened on load); an f16 B holds f16 values,
// so F16 leaves it as it is (and gpu.Gemm.Check refuses F16 with a bf16
// B). gemm_ac.glsl does the same for A and C.
#include "gemm_round.glsl"
layout(constant_id = GEMM_F16_ID) const uint F16 = 0; // half-precision products
float opF16(float x) { return F16 != 0 ? rnd16(x) : x; }
vec4 opF16(vec4 x) { return F16 != 0 ? rnd16(x) : x; }
#ifdef HALF_B
#include "half.glsl"
layout(constant_id = GEMM_BT_ID) const uint BT = DT_F16; // B's type
layout(binding = 1) readonly buffer BufB { uint16_t B_[]; };
layout(binding = 1) readonly buffer BufB4 { u16vec4 B4_[]; };
layout(binding = 1) readonly buffer BufBf { float Bf_[]; };
layout(binding = 1) readonly buffer BufBf4 { vec4 Bf4_[]; };
float LDB(uint i) { return BT == DT_F32 ? opF16(Bf_[i]) : widen16(BT, uint(B_[i])); }
vec4 LDB4(uint i) {
    if (BT == DT_F32) {
        return opF16(Bf4_[i]);
    }
    uvec4 u = uvec4(B4_[i]);
    return vec4(widen16(BT, u.x), widen16(BT, u.y), widen16(BT, u.z), widen16(BT, u.w));
}
#else
layout(binding = 1) readonly buffer BufB { float B_[]; };
layout(binding = 1) readonly buffer BufB4 { vec4 B4_[]; };
#define LDB(i) opF16(B_[i])
#define LDB4(i) opF16(B4_[i])
#endif
