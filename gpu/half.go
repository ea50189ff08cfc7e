package gpu

import "math"

// Conversions between float32 and the 16-bit storage types. Narrowing
// rounds to nearest, ties to even, as the GPU conversions (OpFConvert with
// RTE) and torch's .half()/.bfloat16() do, so the CPU reference and the
// shaders produce the same bits.

// F16ToF32 converts an IEEE 754 half to float32 exactly (every half value,
// subnormals, infinities and NaN included, is a float32).
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN: keep the payload
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp != 0: // normal: rebias 15 -> 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: mant * 2^-24 is a normal float32.
	e := uint32(113)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// F32ToF16 rounds f to the nearest half (ties to even). Values beyond the
// half range become infinities, NaN stays NaN (quiet, payload truncated).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal or zero half: shift the full significand (implicit
		// bit included) right so that one unit is 2^-24, rounding.
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, up to infinity: correct
	}
	return sign | uint16(h)
}

// BF16ToF32 converts a bfloat16 to float32 (it is a float32's top half).
func BF16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// F32ToBF16 rounds f to the nearest bfloat16 (ties to even); NaN stays a
// quiet NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// Round returns f rounded to the precision of d (F16, BF16; f itself for
// F32): what storing f in a view of type d and reading it back gives.
func Round(d DType, f float32) float32 {
	switch d {
	case F16:
		return F16ToF32(F32ToF16(f))
	case BF16:
		return BF16ToF32(F32ToBF16(f))
	}
	return f
}

// IsFloat reports whether d holds floating-point values.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 }
