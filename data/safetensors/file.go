package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// Tensors is what File and Set have in common: named tensors read on demand.
type Tensors interface {
	// Names returns the tensor names in sorted order.
	Names() []string
	// Info describes a tensor; ok is false when there is none of that name.
	Info(name string) (info TensorInfo, ok bool)
	// Float32 returns a tensor of type F32, F16, BF16 or F64 as float32.
	Float32(name string) ([]float32, error)
	// Int64 returns an integer or bool tensor widened to int64.
	Int64(name string) ([]int64, error)
	// Int32 returns an integer tensor as int32 (values must fit).
	Int32(name string) ([]int32, error)
	// Raw returns the little-endian bytes of a tensor as stored.
	Raw(name string) ([]byte, error)
	Close() error
}

// File is an open safetensors file. Tensor data is read lazily with ReadAt,
// so a File may be used from several goroutines at once.
type File struct {
	path      string
	f         *os.File
	dataStart int64
	h         *header
}

var _ Tensors = (*File)(nil)

// Open opens path and validates its header. The file stays open until Close.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	h, start, err := readHeader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return &File{path: path, f: f, dataStart: start, h: h}, nil
}

// readHeader reads the length prefix and header of a file of the given size.
func readHeader(r io.ReaderAt, size int64) (*header, int64, error) {
	var lenBuf [8]byte
	if size < 8 {
		return nil, 0, fmt.Errorf("file is %d bytes, shorter than the 8-byte header length: truncated or not safetensors", size)
	}
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, 0, fmt.Errorf("reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, 0, fmt.Errorf("header length %d exceeds the %d-byte limit: corrupt or not safetensors", n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, 0, fmt.Errorf("header length %d runs past the end of the %d-byte file: truncated", n, size)
	}
	js := make([]byte, n)
	if _, err := r.ReadAt(js, 8); err != nil {
		return nil, 0, fmt.Errorf("reading header: %w", err)
	}
	start := 8 + int64(n)
	h, err := parseHeader(js, size-start)
	if err != nil {
		return nil, 0, err
	}
	return h, start, nil
}

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Close closes the underlying file.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.h.tensors))
	for _, t := range f.h.tensors {
		names = append(names, t.Name)
	}
	sort.Strings(names)
	return names
}

// Len returns the number of tensors.
func (f *File) Len() int { return len(f.h.tensors) }

// Info describes the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.h.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	t := f.h.tensors[i]
	t.Shape = append([]int64(nil), t.Shape...)
	return t, true
}

// Metadata returns a copy of the "__metadata__" map (nil when absent).
func (f *File) Metadata() map[string]string {
	if f.h.metadata == nil {
		return nil
	}
	m := make(map[string]string, len(f.h.metadata))
	for k, v := range f.h.metadata {
		m[k] = v
	}
	return m
}

// errf prefixes an error with the file and tensor.
func (f *File) errf(name, format string, args ...any) error {
	return fmt.Errorf("safetensors: %s: tensor %q: %s", f.path, name, fmt.Sprintf(format, args...))
}

// lookup returns the info of a tensor or a not-found error.
func (f *File) lookup(name string) (TensorInfo, error) {
	i, ok := f.h.byName[name]
	if !ok {
		return TensorInfo{}, fmt.Errorf("safetensors: %s: no tensor %q", f.path, name)
	}
	return f.h.tensors[i], nil
}

// Raw returns the stored bytes of a tensor.
func (f *File) Raw(name string) ([]byte, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return f.readRaw(t)
}

// readRaw reads the bytes of t from disk.
func (f *File) readRaw(t TensorInfo) ([]byte, error) {
	if f.f == nil {
		return nil, f.errf(t.Name, "file is closed")
	}
	if t.ByteSize() > math.MaxInt {
		return nil, f.errf(t.Name, "%d bytes do not fit in memory", t.ByteSize())
	}
	buf := make([]byte, t.ByteSize())
	if _, err := f.f.ReadAt(buf, f.dataStart+t.Begin); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, f.errf(t.Name, "file ends inside the tensor data (truncated since it was opened?)")
		}
		return nil, f.errf(t.Name, "read: %v", err)
	}
	return buf, nil
}

// Float32 returns a float tensor (F32, F16, BF16 or F64) converted to float32.
func (f *File) Float32(name string) ([]float32, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if !t.DType.IsFloat() {
		return nil, f.errf(name, "dtype %s is not a float type (want F32, F16, BF16 or F64)", t.DType)
	}
	raw, err := f.readRaw(t)
	if err != nil {
		return nil, err
	}
	out := make([]float32, t.NumElements())
	if err := decodeFloat32(out, raw, t.DType); err != nil {
		return nil, f.errf(name, "%v", err)
	}
	return out, nil
}

// Int64 returns an integer or bool tensor widened to int64.
func (f *File) Int64(name string) ([]int64, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if t.DType.IsFloat() || t.DType == F8E4M3 || t.DType == F8E5M2 {
		return nil, f.errf(name, "dtype %s is not an integer type", t.DType)
	}
	raw, err := f.readRaw(t)
	if err != nil {
		return nil, err
	}
	out := make([]int64, t.NumElements())
	if err := decodeInt64(out, raw, t.DType); err != nil {
		return nil, f.errf(name, "%v", err)
	}
	return out, nil
}

// Int32 returns an integer tensor as int32; I64 (and U32, U64) values must
// fit in int32.
func (f *File) Int32(name string) ([]int32, error) {
	v, err := f.Int64(name)
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(v))
	for i, x := range v {
		if x < math.MinInt32 || x > math.MaxInt32 {
			return nil, f.errf(name, "element %d = %d does not fit in int32", i, x)
		}
		out[i] = int32(x)
	}
	return out, nil
}
