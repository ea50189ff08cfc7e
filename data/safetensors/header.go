package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
)

// MaxHeaderSize is the largest JSON header accepted (the limit of the
// reference implementation): a larger length field means a corrupt file.
const MaxHeaderSize = 100 << 20

// metadataKey is the header entry holding free-form string metadata.
const metadataKey = "__metadata__"

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int64
	// Begin and End are byte offsets relative to the start of the data
	// section (just after the header), End exclusive.
	Begin, End int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// ByteSize returns End - Begin.
func (t TensorInfo) ByteSize() int64 { return t.End - t.Begin }

// rawEntry is one tensor entry as it appears in the JSON header.
type rawEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// header is a parsed and validated header.
type header struct {
	tensors  []TensorInfo // sorted by Begin
	byName   map[string]int
	metadata map[string]string
	dataLen  int64 // sum of tensor sizes = length of the data section
}

// parseHeader decodes and validates the JSON header. dataAvail is the number
// of bytes present after the header (the file size minus 8 minus the header
// length); tensors must tile [0, dataAvail) exactly.
func parseHeader(js []byte, dataAvail int64) (*header, error) {
	// Spec: the header may be padded with trailing spaces.
	js = bytes.TrimRight(js, " ")
	if len(js) == 0 || js[0] != '{' {
		return nil, errors.New("header is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // '{'
		return nil, fmt.Errorf("header JSON: %v", err)
	}
	h := &header{byName: map[string]int{}}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("header JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("header JSON: unexpected %v", tok)
		}
		if seen[name] {
			return nil, fmt.Errorf("header: duplicate entry %q", name)
		}
		seen[name] = true
		if name == metadataKey {
			var md map[string]string
			if err := dec.Decode(&md); err != nil {
				return nil, fmt.Errorf("header: __metadata__ must map strings to strings: %v", err)
			}
			h.metadata = md
			continue
		}
		var e rawEntry
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("tensor %q: bad header entry: %v", name, err)
		}
		ti, err := e.info(name)
		if err != nil {
			return nil, err
		}
		h.tensors = append(h.tensors, ti)
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, fmt.Errorf("header JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("header JSON: trailing data after the object")
	}

	// The reference implementation requires the tensors to tile the data
	// section: sorted by offset, no gaps, no overlaps, nothing left over.
	sort.SliceStable(h.tensors, func(i, j int) bool {
		a, b := h.tensors[i], h.tensors[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		return a.End < b.End
	})
	var pos int64
	for i, t := range h.tensors {
		switch {
		case t.Begin < pos:
			return nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap the previous tensor %q (which ends at %d)",
				t.Name, t.Begin, t.End, h.tensors[i-1].Name, pos)
		case t.Begin > pos:
			return nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a gap after byte %d", t.Name, t.Begin, t.End, pos)
		}
		if t.End > dataAvail {
			return nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] run past the end of the data (%d bytes): truncated file?",
				t.Name, t.Begin, t.End, dataAvail)
		}
		pos = t.End
		h.byName[t.Name] = i
	}
	if pos != dataAvail {
		return nil, fmt.Errorf("data section has %d bytes but the tensors use %d", dataAvail, pos)
	}
	h.dataLen = pos
	return h, nil
}

// info validates one header entry.
func (e rawEntry) info(name string) (TensorInfo, error) {
	if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: header entry needs dtype, shape and data_offsets", name)
	}
	dt := DType(*e.DType)
	if !dt.Known() {
		return TensorInfo{}, fmt.Errorf("tensor %q: unknown dtype %q", name, *e.DType)
	}
	off := *e.DataOffsets
	if len(off) != 2 {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets must have 2 entries, got %d", name, len(off))
	}
	if off[0] < 0 || off[1] < off[0] {
		return TensorInfo{}, fmt.Errorf("tensor %q: invalid data_offsets [%d, %d]", name, off[0], off[1])
	}
	shape := append([]int64(nil), (*e.Shape)...)
	// Multiply with overflow checks: a crafted shape must not wrap around to
	// a small size that happens to match the offsets.
	n := uint64(dt.Size())
	for _, d := range shape {
		if d < 0 {
			return TensorInfo{}, fmt.Errorf("tensor %q: negative dimension in shape %v", name, shape)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return TensorInfo{}, fmt.Errorf("tensor %q: shape %v is too large", name, shape)
		}
		n = lo
	}
	if int64(n) != off[1]-off[0] {
		return TensorInfo{}, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes but data_offsets [%d, %d] hold %d",
			name, shape, dt, n, off[0], off[1], off[1]-off[0])
	}
	return TensorInfo{Name: name, DType: dt, Shape: shape, Begin: off[0], End: off[1]}, nil
}
