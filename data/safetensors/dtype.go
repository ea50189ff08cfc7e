package safetensors

import (
	"blip/gpu"
	"encoding/binary"
	"fmt"
	"math"
)

// DType is a safetensors element type as spelled in the header ("F32", ...).
type DType string

// The element types of the safetensors specification.
const (
	BOOL    DType = "BOOL"
	U8      DType = "U8"
	I8      DType = "I8"
	F8E5M2  DType = "F8_E5M2"
	F8E4M3  DType = "F8_E4M3"
	I16     DType = "I16"
	U16     DType = "U16"
	F16     DType = "F16"
	BF16    DType = "BF16"
	I32     DType = "I32"
	U32     DType = "U32"
	F32     DType = "F32"
	F64     DType = "F64"
	I64     DType = "I64"
	U64     DType = "U64"
	unknown DType = ""
)

// Size returns the size of one element in bytes, or 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case BOOL, U8, I8, F8E5M2, F8E4M3:
		return 1
	case I16, U16, F16, BF16:
		return 2
	case I32, U32, F32:
		return 4
	case F64, I64, U64:
		return 8
	}
	return 0
}

// Known reports whether d is one of the types of the specification.
func (d DType) Known() bool { return d.Size() != 0 }

// IsFloat reports whether Float32 accepts tensors of type d.
func (d DType) IsFloat() bool {
	switch d {
	case F32, F16, BF16, F64:
		return true
	}
	return false
}

// decodeFloat32 converts little-endian raw bytes of type dt into dst.
func decodeFloat32(dst []float32, raw []byte, dt DType) error {
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = gpu.F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = gpu.BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		return fmt.Errorf("dtype %s is not a float type (want F32, F16, BF16 or F64)", dt)
	}
	return nil
}

// decodeInt64 widens little-endian integer (or bool) raw bytes of type dt into dst.
func decodeInt64(dst []int64, raw []byte, dt DType) error {
	switch dt {
	case I64:
		for i := range dst {
			dst[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case U64:
		for i := range dst {
			v := binary.LittleEndian.Uint64(raw[8*i:])
			if v > math.MaxInt64 {
				return fmt.Errorf("element %d = %d overflows int64", i, v)
			}
			dst[i] = int64(v)
		}
	case I32:
		for i := range dst {
			dst[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	case U32:
		for i := range dst {
			dst[i] = int64(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case I16:
		for i := range dst {
			dst[i] = int64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
		}
	case U16:
		for i := range dst {
			dst[i] = int64(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case I8:
		for i := range dst {
			dst[i] = int64(int8(raw[i]))
		}
	case U8, BOOL:
		for i := range dst {
			dst[i] = int64(raw[i])
		}
	default:
		return fmt.Errorf("dtype %s is not an integer type", dt)
	}
	return nil
}
