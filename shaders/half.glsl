// 16-bit storage types for blip's shaders. F16 views are float16_t, BF16
// views uint16_t (bfloat16 is a float32's top half; no extension needed).
// Values are widened to fp32 on load and rounded to nearest even on store,
// matching gpu.F32ToF16/F32ToBF16 bit for bit.
#ifndef BLIP_HALF_GLSL
#define BLIP_HALF_GLSL
#extension GL_EXT_shader_16bit_storage : require
// Only loads, stores and conversions touch 16-bit types (16-bit storage
// allows them without the Int16/Float16 arithmetic capabilities); the
// helpers below work on the 16-bit codes held in a uint.

// dtype codes of the specialization constants (gpu.F32, gpu.F16, gpu.BF16
// renumbered): 0 f32, 1 f16, 2 bf16.
#define DT_F32 0u
#define DT_F16 1u
#define DT_BF16 2u

float bf16_to_f32(uint b) {
    return uintBitsToFloat(uint(b) << 16);
}

uint f32_to_bf16(float f) {
    uint b = floatBitsToUint(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return (b >> 16) | 0x40u;
    }
    b += 0x7fffu + ((b >> 16) & 1u);
    return b >> 16;
}

// f32 -> f16 bits, round to nearest even, in integer arithmetic (the float
// conversion's rounding mode is the driver's choice).
uint f32_to_f16_bits(float f) {
    uint b = floatBitsToUint(f);
    uint sign = (b >> 16) & 0x8000u;
    int exp = int((b >> 23) & 0xffu);
    uint mant = b & 0x7fffffu;
    if (exp == 255) {
        return sign | (mant != 0u ? (0x7e00u | (mant >> 13)) : 0x7c00u);
    }
    int e = exp - 127 + 15;
    if (e >= 31) {
        return sign | 0x7c00u;
    }
    if (e <= 0) {
        if (e < -10) {
            return sign;
        }
        uint m = mant | 0x800000u;
        uint shift = uint(14 - e);
        uint h = m >> shift;
        uint rem = m & ((1u << shift) - 1u);
        uint half_ = 1u << (shift - 1u);
        if (rem > half_ || (rem == half_ && (h & 1u) == 1u)) {
            h++;
        }
        return sign | h;
    }
    uint h = (uint(e) << 10) | (mant >> 13);
    uint rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) {
        h++;
    }
    return sign | h;
}

// f16 bits -> f32, exactly (subnormals included), without branches (it
// runs per weight in the 16-bit GEMMs) and without f32 subnormals (a
// device may flush those): the exponent rebiased with the mantissa in
// place; a subnormal f16 m * 2^-24 as (1 + m/1024) * 2^-14 - 2^-14, both
// operands f32 normals and the difference exact (Sterbenz) and normal;
// the all-ones exponent (Inf, NaN) kept with its mantissa.
float f16_bits_to_f32(uint h) {
    uint em = h & 0x7fffu; // exponent and mantissa
    uint exp = em >> 10;
    float f = exp == 0u ? uintBitsToFloat((em << 13) + 0x38800000u) - 6.103515625e-05
                        : uintBitsToFloat((em << 13) + 0x38000000u);
    uint bits = exp == 31u ? 0x7f800000u | ((em & 0x3ffu) << 13) : floatBitsToUint(f);
    return uintBitsToFloat(bits | ((h & 0x8000u) << 16));
}

// Widens one 16-bit code of type dt (DT_F16 or DT_BF16).
float widen16(uint dt, uint v) {
    return dt == DT_F16 ? f16_bits_to_f32(v) : bf16_to_f32(v);
}

// Narrows f to a 16-bit code of type dt.
uint narrow16(uint dt, float f) {
    return dt == DT_F16 ? f32_to_f16_bits(f) : f32_to_bf16(f);
}
#endif
