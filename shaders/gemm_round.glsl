// gpu.Gemm.F16's rounding of the operands to f16, for every gemm shader.
#ifndef BLIP_GEMM_ROUND_GLSL
#define BLIP_GEMM_ROUND_GLSL

// x rounded to f16, round to nearest even, as an fp32 value: gpu.Round(F16,
// x) bit for bit (a NaN stays a NaN). Integer arithmetic and roundEven are
// exact on every device, where the float -> half conversion's rounding
// mode is the driver's choice. From 2^-14 up (f16 normals) the 13 dropped
// mantissa bits round to nearest even (the carry may reach the exponent,
// past 65504 to infinity); below it f16 values are the multiples of 2^-24,
// and scaling by powers of two is exact. Cheaper than half.glsl's
// f32_to_f16_bits and back, which the tiled kernels would run per load.
float rnd16(float x) {
    uint b = floatBitsToUint(x);
    uint a = b & 0x7fffffffu;
    uint r = (a + 0xfffu + ((a >> 13) & 1u)) & 0xffffe000u;
    r = r > 0x477fe000u ? 0x7f800000u : r;
    float n = uintBitsToFloat((b & 0x80000000u) | r);
    float s = roundEven(x * 16777216.0) * (1.0 / 16777216.0);
    return a > 0x7f800000u ? x : (a < 0x38800000u ? s : n);
}

vec4 rnd16(vec4 v) {
    return vec4(rnd16(v.x), rnd16(v.y), rnd16(v.z), rnd16(v.w));
}
#endif
