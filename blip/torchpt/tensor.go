package torchpt

import (
	"encoding/binary"
	"fmt"
	"math"

	"blip/data/safetensors"
	"blip/gpu"
)

// DType is an element type, spelled as in safetensors ("F32", "BF16", ...).
type DType = safetensors.DType

// storageDTypes maps torch's legacy typed-storage class names, which torch.save
// still writes in every persistent id, to element types.
var storageDTypes = map[string]DType{
	"FloatStorage":    safetensors.F32,
	"HalfStorage":     safetensors.F16,
	"BFloat16Storage": safetensors.BF16,
	"DoubleStorage":   safetensors.F64,
	"LongStorage":     safetensors.I64,
	"IntStorage":      safetensors.I32,
	"ShortStorage":    safetensors.I16,
	"CharStorage":     safetensors.I8,
	"ByteStorage":     safetensors.U8,
	"BoolStorage":     safetensors.BOOL,
}

// storageSource reads bytes of one storage; off is relative to its start.
type storageSource interface {
	readAt(p []byte, off int64) error
}

// Storage is one block of elements that tensors view; several tensors (tied
// weights) may share one.
type Storage struct {
	Key   string // the storage's name in the archive
	DType DType
	Numel int64 // elements
	src   storageSource
}

// Tensor is a strided view of a Storage, as torch._utils._rebuild_tensor_v2
// describes it. Offset and Stride count elements.
type Tensor struct {
	Storage *Storage
	Offset  int64
	Shape   []int64
	Stride  []int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// maxExpand bounds the decoded size of a tensor that holds more elements than
// its storage (stride-0 expanded views): a crafted shape must not make us
// allocate without limit.
const maxExpand = 64 << 20

// check validates the view against its storage: sizes and strides are
// non-negative and every element it addresses lies inside the storage.
// It returns the element count and the last element index used.
func (t *Tensor) check() (n, last int64, err error) {
	if len(t.Shape) != len(t.Stride) {
		return 0, 0, fmt.Errorf("shape %v and stride %v differ in rank", t.Shape, t.Stride)
	}
	if t.Offset < 0 {
		return 0, 0, fmt.Errorf("negative storage offset %d", t.Offset)
	}
	n = 1
	last = t.Offset
	for i, d := range t.Shape {
		s := t.Stride[i]
		if d < 0 || s < 0 {
			return 0, 0, fmt.Errorf("negative size or stride in shape %v stride %v", t.Shape, t.Stride)
		}
		if d == 0 {
			return 0, t.Offset, nil
		}
		if n > math.MaxInt64/d {
			return 0, 0, fmt.Errorf("shape %v is too large", t.Shape)
		}
		n *= d
		if s != 0 && d-1 > (math.MaxInt64-last)/s {
			return 0, 0, fmt.Errorf("stride %v overflows", t.Stride)
		}
		last += (d - 1) * s
	}
	if last >= t.Storage.Numel {
		return 0, 0, fmt.Errorf("view (offset %d, shape %v, stride %v) reaches element %d of a storage of %d",
			t.Offset, t.Shape, t.Stride, last, t.Storage.Numel)
	}
	if n > t.Storage.Numel && n*int64(t.Storage.DType.Size()) > maxExpand {
		return 0, 0, fmt.Errorf("expanded view of shape %v is too large", t.Shape)
	}
	return n, last, nil
}

// contiguous reports whether the view is dense and row-major.
func (t *Tensor) contiguous() bool {
	want := int64(1)
	for i := len(t.Shape) - 1; i >= 0; i-- {
		if t.Shape[i] != 1 && t.Stride[i] != want {
			return false
		}
		want *= t.Shape[i]
	}
	return true
}

// bytes returns the tensor's elements as contiguous row-major little-endian
// bytes, gathering non-contiguous views and byte-swapping big-endian data.
func (t *Tensor) bytes(bigEndian bool) ([]byte, error) {
	n, last, err := t.check()
	if err != nil {
		return nil, err
	}
	es := int64(t.Storage.DType.Size())
	if n == 0 {
		return []byte{}, nil
	}
	span := make([]byte, (last-t.Offset+1)*es)
	if err := t.Storage.src.readAt(span, t.Offset*es); err != nil {
		return nil, err
	}
	out := span
	if !t.contiguous() {
		out = make([]byte, n*es)
		gather(out, span, t.Shape, t.Stride, es)
	}
	if bigEndian {
		swapBytes(out, int(es))
	}
	return out, nil
}

// gather copies the strided elements of src (element 0 at the view's offset)
// into dst in row-major order.
func gather(dst, src []byte, shape, stride []int64, es int64) {
	rank := len(shape)
	idx := make([]int64, rank)
	var pos, srcOff int64
	for {
		copy(dst[pos:pos+es], src[srcOff*es:srcOff*es+es])
		pos += es
		// Odometer increment, last dimension fastest.
		k := rank - 1
		for ; k >= 0; k-- {
			idx[k]++
			srcOff += stride[k]
			if idx[k] < shape[k] {
				break
			}
			srcOff -= idx[k] * stride[k]
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

// swapBytes reverses the byte order of each es-byte element in place.
func swapBytes(b []byte, es int) {
	if es == 1 {
		return
	}
	for i := 0; i+es <= len(b); i += es {
		for l, r := i, i+es-1; l < r; l, r = l+1, r-1 {
			b[l], b[r] = b[r], b[l]
		}
	}
}

// decodeFloat32 converts little-endian bytes of a float type to float32.
func decodeFloat32(raw []byte, dt DType) ([]float32, error) {
	n := 0
	if es := dt.Size(); es > 0 {
		n = len(raw) / es
	}
	out := make([]float32, n)
	switch dt {
	case safetensors.F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case safetensors.F16:
		for i := range out {
			out[i] = gpu.F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case safetensors.BF16:
		for i := range out {
			out[i] = gpu.BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case safetensors.F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		return nil, fmt.Errorf("dtype %s is not a float type (want F32, F16, BF16 or F64)", dt)
	}
	return out, nil
}
