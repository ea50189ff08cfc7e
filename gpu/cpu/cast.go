package cpu

import (
	"unsafe"

	"blip/gpu"
)

func init() {
	twins["cast"] = func(c gpu.Call) { cast(c.(gpu.Cast)) }
}

// u16 returns the elements of a checked 2-byte view as raw 16-bit codes.
func u16(v gpu.View) []uint16 {
	b := v.Buf.(*buffer)
	all := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b.w))), 2*len(b.w))
	return all[v.Off : v.Off+v.Len]
}

// load returns n elements of a float view (f32, f16, bf16) as float32: the
// view's own memory for f32, a converted copy in scratch otherwise.
func load(v gpu.View, n int, scratch *[]float32) []float32 {
	if v.DType == gpu.F32 {
		return f32(v)[:n]
	}
	if cap(*scratch) < n {
		*scratch = make([]float32, n)
	}
	out := (*scratch)[:n]
	h := u16(v)[:n]
	if v.DType == gpu.F16 {
		for i, x := range h {
			out[i] = gpu.F16ToF32(x)
		}
	} else {
		for i, x := range h {
			out[i] = gpu.BF16ToF32(x)
		}
	}
	return out
}

// cast: Y[i] = X[i] converted, rounding to nearest even when narrowing.
func cast(c gpu.Cast) {
	if c.X.DType == c.Y.DType {
		// Bits as they are, NaN payloads included (as the shader).
		if c.X.DType == gpu.F32 {
			copy(u32(c.Y)[:c.N], u32(c.X)[:c.N])
		} else {
			copy(u16(c.Y)[:c.N], u16(c.X)[:c.N])
		}
		return
	}
	var tmp []float32
	x := load(c.X, c.N, &tmp)
	switch c.Y.DType {
	case gpu.F32:
		copy(f32(c.Y), x)
	case gpu.F16:
		y := u16(c.Y)
		for i, v := range x {
			y[i] = gpu.F32ToF16(v)
		}
	case gpu.BF16:
		y := u16(c.Y)
		for i, v := range x {
			y[i] = gpu.F32ToBF16(v)
		}
	}
}
