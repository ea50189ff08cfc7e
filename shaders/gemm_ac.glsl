// The activations of gemm.glsl and gemm_cpu.glsl: A (binding 0) read
// through LDA(i) and LDA4(i) (vec4 i), C (binding 2) through LDC/LDC4 and
// written through STC(i, v)/STC4(i, v). The includer includes gemm_b.glsl
// first and, for the _h builds (HALF_B), defines the specialization
// constant ids GEMM_AT_ID and GEMM_CT_ID.
//
// In the _h builds A and C may each be stored in 16 bits (activations that
// 16-bit products read: gpu.Gemm): their types are specialization
// constants (DT_F32, DT_F16, DT_BF16), A widened exactly on load, C
// rounded to nearest even on store (narrow16) and widened where Beta reads
// it. The other builds declare f32 A and C only, so their modules need no
// 16-bit storage.
#ifdef HALF_B
layout(constant_id = GEMM_AT_ID) const uint AT = DT_F32; // A's type
layout(constant_id = GEMM_CT_ID) const uint CT = DT_F32; // C's type
layout(binding = 0) readonly buffer BufAh { uint16_t Ah_[]; };
layout(binding = 0) readonly buffer BufAh4 { u16vec4 Ah4_[]; };
layout(binding = 2) buffer BufCh { uint16_t Ch_[]; };
layout(binding = 2) buffer BufCh4 { u16vec4 Ch4_[]; };

vec4 widen16x4(uint dt, uvec4 u) {
    return vec4(widen16(dt, u.x), widen16(dt, u.y), widen16(dt, u.z), widen16(dt, u.w));
}

float LDA(uint i) { return AT == DT_F32 ? A_[i] : widen16(AT, uint(Ah_[i])); }
vec4 LDA4(uint i) { return AT == DT_F32 ? A4_[i] : widen16x4(AT, uvec4(Ah4_[i])); }
float LDC(uint i) { return CT == DT_F32 ? C_[i] : widen16(CT, uint(Ch_[i])); }
void STC(uint i, float v) {
    if (CT == DT_F32) {
        C_[i] = v;
    } else {
        Ch_[i] = uint16_t(narrow16(CT, v));
    }
}
#ifdef GEMM_C4
vec4 LDC4(uint i) { return CT == DT_F32 ? C4_[i] : widen16x4(CT, uvec4(Ch4_[i])); }
void STC4(uint i, vec4 v) {
    if (CT == DT_F32) {
        C4_[i] = v;
    } else {
        Ch4_[i] = u16vec4(uvec4(narrow16(CT, v.x), narrow16(CT, v.y), narrow16(CT, v.z), narrow16(CT, v.w)));
    }
}
#endif
#else
#define LDA(i) A_[i]
#define LDA4(i) A4_[i]
#define LDC(i) C_[i]
#define STC(i, v) C_[i] = (v)
#define LDC4(i) C4_[i]
#define STC4(i, v) C4_[i] = (v)
#endif
