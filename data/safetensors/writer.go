package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Writer collects tensors and writes them as one safetensors file. The
// slices passed to the Add methods are kept, not copied: do not modify them
// before WriteFile returns.
type Writer struct {
	tensors  []pending
	names    map[string]bool
	metadata map[string]string
}

// pending is a tensor waiting to be written.
type pending struct {
	name  string
	dtype DType
	shape []int64
	f32   []float32
	i32   []int32
	i64   []int64
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{names: map[string]bool{}, metadata: map[string]string{}}
}

// SetMetadata sets a "__metadata__" entry.
func (w *Writer) SetMetadata(key, value string) { w.metadata[key] = value }

// check validates a name and a shape against an element count.
func (w *Writer) check(name string, shape []int64, n int) error {
	if name == "" || name == metadataKey {
		return fmt.Errorf("safetensors: invalid tensor name %q", name)
	}
	if w.names[name] {
		return fmt.Errorf("safetensors: tensor %q added twice", name)
	}
	want := int64(1)
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("safetensors: tensor %q: negative dimension in shape %v", name, shape)
		}
		if d != 0 && want > math.MaxInt64/d {
			return fmt.Errorf("safetensors: tensor %q: shape %v is too large", name, shape)
		}
		want *= d
	}
	if want != int64(n) {
		return fmt.Errorf("safetensors: tensor %q: shape %v has %d elements but %d values were given", name, shape, want, n)
	}
	w.names[name] = true
	return nil
}

// AddFloat32 adds an F32 tensor.
func (w *Writer) AddFloat32(name string, shape []int64, data []float32) error {
	if err := w.check(name, shape, len(data)); err != nil {
		return err
	}
	w.tensors = append(w.tensors, pending{name: name, dtype: F32, shape: append([]int64{}, shape...), f32: data})
	return nil
}

// AddInt32 adds an I32 tensor.
func (w *Writer) AddInt32(name string, shape []int64, data []int32) error {
	if err := w.check(name, shape, len(data)); err != nil {
		return err
	}
	w.tensors = append(w.tensors, pending{name: name, dtype: I32, shape: append([]int64{}, shape...), i32: data})
	return nil
}

// AddInt64 adds an I64 tensor.
func (w *Writer) AddInt64(name string, shape []int64, data []int64) error {
	if err := w.check(name, shape, len(data)); err != nil {
		return err
	}
	w.tensors = append(w.tensors, pending{name: name, dtype: I64, shape: append([]int64{}, shape...), i64: data})
	return nil
}

// headerEntry is one tensor's header entry as written.
type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// layout orders the tensors (larger elements first, then by name, so every
// tensor is aligned to its element size when the header length is a
// multiple of 8) and builds the padded header.
func (w *Writer) layout() ([]pending, []byte, error) {
	ts := append([]pending(nil), w.tensors...)
	sort.SliceStable(ts, func(i, j int) bool {
		if a, b := ts[i].dtype.Size(), ts[j].dtype.Size(); a != b {
			return a > b
		}
		return ts[i].name < ts[j].name
	})
	entries := make(map[string]any, len(ts)+1)
	if len(w.metadata) > 0 {
		entries[metadataKey] = w.metadata
	}
	var off int64
	for _, t := range ts {
		n := int64(1)
		for _, d := range t.shape {
			n *= d
		}
		size := n * int64(t.dtype.Size())
		shape := t.shape
		if shape == nil {
			shape = []int64{}
		}
		entries[t.name] = headerEntry{DType: t.dtype, Shape: shape, DataOffsets: [2]int64{off, off + size}}
		off += size
	}
	js, err := json.Marshal(entries)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: encoding header: %v", err)
	}
	// Pad with spaces to a multiple of 8 so data starts 8-byte aligned.
	for (len(js))%8 != 0 {
		js = append(js, ' ')
	}
	if len(js) > MaxHeaderSize {
		return nil, nil, fmt.Errorf("safetensors: header of %d bytes exceeds the %d-byte limit", len(js), MaxHeaderSize)
	}
	return ts, js, nil
}

// writeAll writes the length prefix, header and data to out.
func (w *Writer) writeAll(out *os.File) error {
	ts, js, err := w.layout()
	if err != nil {
		return err
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	var buf bytes.Buffer
	buf.Write(lenBuf[:])
	buf.Write(js)
	const flushAt = 1 << 20
	flush := func() error {
		if _, err := out.Write(buf.Bytes()); err != nil {
			return err
		}
		buf.Reset()
		return nil
	}
	var b8 [8]byte
	for _, t := range ts {
		switch t.dtype {
		case F32:
			for _, v := range t.f32 {
				binary.LittleEndian.PutUint32(b8[:4], math.Float32bits(v))
				buf.Write(b8[:4])
				if buf.Len() >= flushAt {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		case I32:
			for _, v := range t.i32 {
				binary.LittleEndian.PutUint32(b8[:4], uint32(v))
				buf.Write(b8[:4])
				if buf.Len() >= flushAt {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		case I64:
			for _, v := range t.i64 {
				binary.LittleEndian.PutUint64(b8[:], uint64(v))
				buf.Write(b8[:])
				if buf.Len() >= flushAt {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
	}
	return flush()
}

// WriteFile writes the tensors to path atomically: into a temporary file in
// the same directory, synced, then renamed over path, so a reader never sees
// a half-written checkpoint and a crash leaves the old file intact.
func (w *Writer) WriteFile(path string) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := w.writeAll(tmp); err != nil {
		return fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("safetensors: syncing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: closing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	// Make the rename itself durable; some platforms cannot sync a
	// directory, and the data is already safe, so that error is ignored.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
