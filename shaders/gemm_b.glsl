// The B operand of gemm.glsl and gemm_cpu.glsl: binding 1, read through
// LDB(i) (one element) and LDB4(i) (vec4 i, elements 4i..4i+3). With
// HALF_B it is stored in 16 bits (weights) and widened on load, its type
// the specialization constant GEMM_BT_ID (DT_F16 or DT_BF16); the includer
// defines GEMM_BT_ID first.
#ifdef HALF_B
#include "half.glsl"
layout(constant_id = GEMM_BT_ID) const uint BT = DT_F16; // B's type
layout(binding = 1) readonly buffer BufB { uint16_t B_[]; };
layout(binding = 1) readonly buffer BufB4 { u16vec4 B4_[]; };
float LDB(uint i) { return widen16(BT, uint(B_[i])); }
vec4 LDB4(uint i) {
    uvec4 u = uvec4(B4_[i]);
    return vec4(widen16(BT, u.x), widen16(BT, u.y), widen16(BT, u.z), widen16(BT, u.w));
}
#else
layout(binding = 1) readonly buffer BufB { float B_[]; };
layout(binding = 1) readonly buffer BufB4 { vec4 B4_[]; };
#define LDB(i) B_[i]
#define LDB4(i) B4_[i]
#endif
