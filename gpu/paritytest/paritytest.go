// Package paritytest is the kernel test table every backend runs, in the
// style of ggml's test-backend-ops: one list of cases (kernel, shapes, input
// data, tolerance), a float64 reference for each, and runners that execute a
// case on a backend and compare.
//
//   - RunReference checks a backend against the float64 references (this is
//     how the CPU backend, the twin of every shader, is proven correct).
//   - RunParity runs every case on a backend and on a reference backend (the
//     CPU one) with identical inputs and compares them.
//   - RunErrors checks that invalid calls are refused by Do, name their
//     kernel, and that nothing of a refused Do runs.
//
// # Tolerance
//
// Every output element is compared with
//
//	|got - want| <= Tol * scale
//
// where scale = max(Floor, max |want| over the element's block), blocks being
// Block consecutive elements of the output view (Block 0: the whole view,
// Block 1: every element on its own, Block Cols: one row). Floor 0 means 1
// (so by default errors are absolute for outputs of magnitude <= 1 and
// relative to the largest output otherwise); a negative Floor means no
// floor, and a block whose largest |want| is 0 must then match exactly.
// Moreover where want is NaN, got must be NaN; where want is ±Inf, got must
// be the same infinity; where want is finite, got must be finite. i32 outputs
// must match exactly. Elements of the output views that the kernel must not
// write (gaps of a leading dimension, say) are part of want and so must keep
// their initial value, every input view must be left bit-for-bit unchanged,
// and so must the guard elements around every view.
//
// Tol bounds the error against the exact (float64) result; RunParity uses the
// same Tol against the CPU backend, whose own error (logged by RunReference)
// is far below it.
package paritytest

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"blip/gpu"
)

// FillKind selects how a Fill generates values.
type FillKind uint8

// Fill kinds.
const (
	FillZero    FillKind = iota
	FillNormal           // A + B*N(0, 1)
	FillUniform          // uniform in [A, B)
	FillInts             // integers uniform in [A, B) (as floats in f32 tensors: duplicates)
	FillConst            // every element A
	FillFunc             // Func(i)
)

// Fill says how the elements of a tensor are generated. Random fills are
// seeded from the case and tensor names, so every run and every backend sees
// the same data. Set overrides single elements afterwards (NaN, ±Inf,
// duplicates, out-of-range ids).
type Fill struct {
	Kind FillKind
	A, B float64
	Func func(i int) float64
	Set  map[int]float64
}

// Normal is mean + std*N(0, 1).
func Normal(mean, std float64) Fill { return Fill{Kind: FillNormal, A: mean, B: std} }

// Uniform is uniform in [lo, hi).
func Uniform(lo, hi float64) Fill { return Fill{Kind: FillUniform, A: lo, B: hi} }

// Ints is integers uniform in [lo, hi).
func Ints(lo, hi int) Fill { return Fill{Kind: FillInts, A: float64(lo), B: float64(hi)} }

// Const is every element v.
func Const(v float64) Fill { return Fill{Kind: FillConst, A: v} }

// Func is f(i) for element i.
func Func(f func(i int) float64) Fill { return Fill{Kind: FillFunc, Func: f} }

// With returns f with element i set to v after filling.
func (f Fill) With(i int, v float64) Fill {
	m := make(map[int]float64, len(f.Set)+1)
	for k, x := range f.Set {
		m[k] = x
	}
	m[i] = v
	f.Set = m
	return f
}

// Tensor is one view a case uses. Each tensor lives in a buffer of its own
// that holds Off guard elements, the view (Len elements) and guardTail more
// guard elements.
type Tensor struct {
	Name  string
	DType gpu.DType // F32, I32, or F16/BF16 (one 16-bit code per word here)
	Len   int       // elements of the view
	Off   int       // element offset of the view in its buffer
	Fill  Fill      // initial content of the view
	Out   bool      // written by the kernel and compared
	// Scratch: a view the kernel may write or leave as it is (a fused
	// call's intermediate); its content is not compared, its guards are.
	Scratch bool
	// Tol, where set, replaces the case's tolerance for this output (a
	// 16-bit output among fp32 ones: storedUnit).
	Tol float64
}

// Case is one kernel invocation of the table.
type Case struct {
	Name   string // unique; starts with the kernel name
	Kernel string // a gpu.KernelNames entry
	Tol    float64
	Floor  float64 // minimum scale; 0 means 1, negative means none
	Block  int     // elements sharing one scale; 0 means the whole view
	// Tensors lists the views, inputs and outputs; an output that is also
	// read (C with Beta != 0, Y aliasing X) has Out and a Fill.
	Tensors []Tensor
	// Build makes the call from views of Tensors (same order).
	Build func(v []gpu.View) gpu.Call
	// Ref gets the initial content of every tensor as float64 and updates
	// the outputs in place to their exact result (rounded to f32/i32 by the
	// harness). It must not depend on any backend.
	Ref func(t [][]float64)
}

const (
	guardTail = 5
	sentinel  = 0x7fa5a5a5 // an f32 NaN; compared bit for bit
)

func seed(parts ...string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(parts, "\x00")))
	return h.Sum64()
}

// Inputs returns the initial content of every tensor of c as raw 32-bit
// words.
func (c *Case) Inputs() [][]uint32 {
	data := make([][]uint32, len(c.Tensors))
	for k, t := range c.Tensors {
		r := rand.New(rand.NewPCG(seed(c.Name, t.Name), 1))
		w := make([]uint32, t.Len)
		for i := range w {
			var v float64
			switch t.Fill.Kind {
			case FillNormal:
				v = t.Fill.A + t.Fill.B*r.NormFloat64()
			case FillUniform:
				v = t.Fill.A + (t.Fill.B-t.Fill.A)*r.Float64()
			case FillInts:
				v = math.Floor(t.Fill.A + (t.Fill.B-t.Fill.A)*r.Float64())
			case FillConst:
				v = t.Fill.A
			case FillFunc:
				v = t.Fill.Func(i)
			}
			w[i] = toWord(t.DType, v)
		}
		for i, v := range t.Fill.Set {
			w[i] = toWord(t.DType, v)
		}
		data[k] = w
	}
	return data
}

func toWord(d gpu.DType, v float64) uint32 {
	switch d {
	case gpu.I32:
		return uint32(int32(v))
	case gpu.F16:
		return uint32(gpu.F32ToF16(float32(v)))
	case gpu.BF16:
		return uint32(gpu.F32ToBF16(float32(v)))
	}
	return math.Float32bits(float32(v))
}

func fromWord(d gpu.DType, w uint32) float64 {
	switch d {
	case gpu.I32:
		return float64(int32(w))
	case gpu.F16:
		return float64(gpu.F16ToF32(uint16(w)))
	case gpu.BF16:
		return float64(gpu.BF16ToF32(uint16(w)))
	}
	return float64(math.Float32frombits(w))
}

// sentinelOf is the guard value of a buffer of type d: a NaN of that type.
func sentinelOf(d gpu.DType) uint32 {
	switch d {
	case gpu.F16:
		return 0x7e5a
	case gpu.BF16:
		return 0x7fa5
	}
	return sentinel
}

// Expected runs Ref on the inputs and returns the expected content of every
// view (inputs unchanged).
func (c *Case) Expected(in [][]uint32) [][]uint32 {
	t := make([][]float64, len(in))
	for k, w := range in {
		t[k] = make([]float64, len(w))
		for i, x := range w {
			t[k][i] = fromWord(c.Tensors[k].DType, x)
		}
	}
	c.Ref(t)
	want := make([][]uint32, len(in))
	for k, tn := range c.Tensors {
		if !tn.Out {
			want[k] = in[k]
			continue
		}
		want[k] = make([]uint32, len(in[k]))
		for i, v := range t[k] {
			want[k][i] = toWord(tn.DType, v)
		}
	}
	return want
}

// Exec runs c on b with the given view contents and returns every tensor's
// whole buffer (guards included) after the call.
func (c *Case) Exec(b gpu.Backend, in [][]uint32) (bufs [][]uint32, err error) {
	views := make([]gpu.View, len(c.Tensors))
	for k, t := range c.Tensors {
		n := t.Off + t.Len + guardTail
		size := int(t.DType.Size())
		buf, err := b.Alloc(int64(n * size))
		if err != nil {
			return nil, fmt.Errorf("Alloc(%d) for %s: %w", n*size, t.Name, err)
		}
		defer b.Free(buf)
		words := make([]uint32, n)
		for i := range words {
			words[i] = sentinelOf(t.DType)
		}
		copy(words[t.Off:], in[k])
		if err := b.Write(buf, 0, wordsToBytes(words, size)); err != nil {
			return nil, fmt.Errorf("Write %s: %w", t.Name, err)
		}
		views[k] = gpu.View{Buf: buf, Off: int64(t.Off), Len: int64(t.Len), DType: t.DType}
	}
	call := c.Build(views)
	if call.Kernel() != c.Kernel {
		return nil, fmt.Errorf("case builds a %s call, but its kernel is %s", call.Kernel(), c.Kernel)
	}
	if err := b.Do(call); err != nil {
		return nil, fmt.Errorf("Do: %w", err)
	}
	if err := b.Sync(); err != nil {
		return nil, fmt.Errorf("Sync: %w", err)
	}
	bufs = make([][]uint32, len(c.Tensors))
	for k, t := range c.Tensors {
		size := int(t.DType.Size())
		by := make([]byte, (t.Off+t.Len+guardTail)*size)
		if err := b.Read(views[k].Buf, 0, by); err != nil {
			return nil, fmt.Errorf("Read %s: %w", t.Name, err)
		}
		bufs[k] = bytesToWords(by, size)
	}
	return bufs, nil
}

// wordsToBytes stores each word in size (4 or 2) little-endian bytes.
func wordsToBytes(w []uint32, size int) []byte {
	b := make([]byte, size*len(w))
	for i, x := range w {
		if size == 2 {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(x))
		} else {
			binary.LittleEndian.PutUint32(b[4*i:], x)
		}
	}
	return b
}

func bytesToWords(b []byte, size int) []uint32 {
	w := make([]uint32, len(b)/size)
	for i := range w {
		if size == 2 {
			w[i] = uint32(binary.LittleEndian.Uint16(b[2*i:]))
		} else {
			w[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
	}
	return w
}

// Mismatch is one element outside the tolerance.
type Mismatch struct {
	Tensor    string
	Index     int // element of the view; negative: guard before the view
	Got, Want string
	Err       float64 // |got-want| / scale, +Inf for a special-value mismatch
}

// Report is the outcome of comparing one run with its expectation.
type Report struct {
	Worst    float64 // largest |got-want|/scale over the outputs
	WorstAt  Mismatch
	Bad      []Mismatch // the first few failures
	NBad     int        // number of failing elements
	Problems []string   // guard or input corruption
}

func (r *Report) fail(m Mismatch) {
	if len(r.Bad) < 5 {
		r.Bad = append(r.Bad, m)
	}
	r.NBad++
}

func format(d gpu.DType, w uint32) string {
	if d == gpu.I32 {
		return fmt.Sprint(int32(w))
	}
	return fmt.Sprint(fromWord(d, w))
}

// Compare checks the buffers Exec returned against the expected view
// contents with the case's tolerance rule (see the package comment).
func (c *Case) Compare(want, bufs [][]uint32) Report {
	var r Report
	floor := c.Floor
	if floor == 0 {
		floor = 1
	}
	floor = max(floor, 0)
	for k, t := range c.Tensors {
		buf := bufs[k]
		for i, w := range buf {
			if i >= t.Off && i < t.Off+t.Len {
				continue
			}
			if w != sentinelOf(t.DType) {
				r.Problems = append(r.Problems, fmt.Sprintf("%s: element %d of its buffer, outside the view [%d, %d), was overwritten with %#x",
					t.Name, i, t.Off, t.Off+t.Len, w))
				break
			}
		}
		if t.Scratch {
			continue
		}
		got := buf[t.Off : t.Off+t.Len]
		wt := want[k]
		if !t.Out {
			for i := range got {
				if got[i] != wt[i] {
					r.Problems = append(r.Problems, fmt.Sprintf("input %s[%d] was changed from %s to %s",
						t.Name, i, format(t.DType, wt[i]), format(t.DType, got[i])))
					break
				}
			}
			continue
		}
		if t.DType == gpu.I32 {
			for i := range got {
				if got[i] != wt[i] {
					m := Mismatch{t.Name, i, format(t.DType, got[i]), format(t.DType, wt[i]), math.Inf(1)}
					r.fail(m)
					if r.Worst != math.Inf(1) {
						r.Worst, r.WorstAt = m.Err, m
					}
				}
			}
			continue
		}
		block := c.Block
		if block <= 0 || block > len(got) {
			block = len(got)
		}
		for b0 := 0; b0 < len(got); b0 += block {
			b1 := min(b0+block, len(got))
			scale := floor
			for _, w := range wt[b0:b1] {
				v := math.Abs(fromWord(t.DType, w))
				if !math.IsInf(v, 0) && !math.IsNaN(v) {
					scale = max(scale, v)
				}
			}
			for i := b0; i < b1; i++ {
				g := fromWord(t.DType, got[i])
				w := fromWord(t.DType, wt[i])
				var e float64
				switch {
				case math.IsNaN(w):
					if !math.IsNaN(g) {
						e = math.Inf(1)
					}
				case math.IsInf(w, 0):
					if g != w {
						e = math.Inf(1)
					}
				case math.IsNaN(g) || math.IsInf(g, 0):
					e = math.Inf(1)
				default:
					d := math.Abs(g - w)
					switch {
					case d == 0:
					case scale == 0:
						e = math.Inf(1)
					default:
						e = d / scale
					}
				}
				m := Mismatch{t.Name, i, format(t.DType, got[i]), format(t.DType, wt[i]), e}
				if e > r.Worst || (r.WorstAt.Tensor == "" && i == 0) {
					r.Worst, r.WorstAt = e, m
				}
				tol := c.Tol
				if t.Tol > 0 {
					tol = t.Tol
				}
				if e > tol {
					r.fail(m)
				}
			}
		}
	}
	return r
}

// OK reports whether the comparison passed.
func (r *Report) OK() bool { return r.NBad == 0 && len(r.Problems) == 0 }

func (c *Case) check(t *testing.T, against string, r Report, took time.Duration) {
	t.Helper()
	if w := r.WorstAt; w.Tensor != "" {
		t.Logf("%s: worst error %.3g (tol %.3g) at %s[%d]: got %s, want %s [%v]",
			against, r.Worst, c.Tol, w.Tensor, w.Index, w.Got, w.Want, took.Round(time.Millisecond))
	} else {
		t.Logf("%s: exact [%v]", against, took.Round(time.Millisecond))
	}
	for _, p := range r.Problems {
		t.Errorf("%s %s: %s", c.Kernel, c.Name, p)
	}
	for _, m := range r.Bad {
		t.Errorf("%s %s: %s[%d] = %s, want %s (%s; error %.3g > tol %.3g)",
			c.Kernel, c.Name, m.Tensor, m.Index, m.Got, m.Want, against, m.Err, c.Tol)
	}
	if r.NBad > len(r.Bad) {
		t.Errorf("%s %s: %d elements outside the tolerance in all", c.Kernel, c.Name, r.NBad)
	}
}

// RunReference runs every case of Cases on b and compares the outputs with
// the float64 references.
func RunReference(t *testing.T, b gpu.Backend) {
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			in := c.Inputs()
			want := c.Expected(in)
			start := time.Now()
			bufs, err := c.Exec(b, in)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("%s %s on %s: %v", c.Kernel, c.Name, b.Name(), err)
			}
			c.check(t, "vs float64", c.Compare(want, bufs), took)
		})
	}
}

// RunParity runs every case of Cases on b and on ref with identical inputs
// and compares b's outputs with ref's within the case tolerance.
func RunParity(t *testing.T, b, ref gpu.Backend) { RunParityOf(t, b, ref, Cases()) }

// RunParityOf is RunParity over the given cases.
func RunParityOf(t *testing.T, b, ref gpu.Backend, cases []Case) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			in := c.Inputs()
			rbufs, err := c.Exec(ref, in)
			if err != nil {
				t.Fatalf("%s %s on %s (reference): %v", c.Kernel, c.Name, ref.Name(), err)
			}
			want := make([][]uint32, len(c.Tensors))
			for k, tn := range c.Tensors {
				want[k] = rbufs[k][tn.Off : tn.Off+tn.Len]
			}
			start := time.Now()
			bufs, err := c.Exec(b, in)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("%s %s on %s: %v", c.Kernel, c.Name, b.Name(), err)
			}
			c.check(t, "vs "+ref.Name(), c.Compare(want, bufs), took)
		})
	}
}
