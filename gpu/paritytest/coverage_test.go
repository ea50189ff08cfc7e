package paritytest

import (
	"math"
	"slices"
	"strings"
	"testing"

	"blip/gpu"
)

// fakeBuf lets Check run on the views of a case without a backend.
// Each view gets its own (id), as Exec gives each tensor its own buffer.
type fakeBuf struct{ n, id int64 }

func (f fakeBuf) Bytes() int64       { return f.n }
func (f fakeBuf) Owner() gpu.Backend { return nil }

func fakeViews(c Case) []gpu.View {
	v := make([]gpu.View, len(c.Tensors))
	for i, t := range c.Tensors {
		v[i] = gpu.View{Buf: fakeBuf{int64(t.Off+t.Len+guardTail) * 4, int64(i)}, Off: int64(t.Off), Len: int64(t.Len), DType: t.DType}
	}
	return v
}

// TestCoverage fails if a kernel has no parity case or no error case, and
// checks that every case builds a valid call of its kernel.
func TestCoverage(t *testing.T) {
	cases := Cases()
	perKernel := map[string]int{}
	names := map[string]bool{}
	for _, c := range cases {
		if !slices.Contains(gpu.KernelNames, c.Kernel) {
			t.Errorf("case %s: kernel %q is not in gpu.KernelNames", c.Name, c.Kernel)
		}
		if !strings.HasPrefix(c.Name, c.Kernel+"/") {
			t.Errorf("case %s: name does not start with %q", c.Name, c.Kernel+"/")
		}
		if names[c.Name] {
			t.Errorf("case %s: duplicate name", c.Name)
		}
		names[c.Name] = true
		perKernel[c.Kernel]++
		call := c.Build(fakeViews(c))
		if call.Kernel() != c.Kernel {
			t.Errorf("case %s builds a %s call", c.Name, call.Kernel())
		}
		if err := call.Check(); err != nil {
			t.Errorf("case %s: %v", c.Name, err)
		}
		outs := 0
		for _, tn := range c.Tensors {
			if tn.Out {
				outs++
			}
			if tn.DType != gpu.F32 && tn.DType != gpu.I32 && tn.DType != gpu.F16 && tn.DType != gpu.BF16 {
				t.Errorf("case %s: tensor %s has dtype %s", c.Name, tn.Name, tn.DType)
			}
		}
		if outs == 0 {
			t.Errorf("case %s has no output", c.Name)
		}
	}
	errs := map[string]int{}
	for _, c := range ErrorCases() {
		errs[c.Kernel]++
	}
	for _, k := range gpu.KernelNames {
		if perKernel[k] == 0 {
			t.Errorf("kernel %s has no case in Cases()", k)
		}
		if errs[k] == 0 {
			t.Errorf("kernel %s has no case in ErrorCases()", k)
		}
		t.Logf("%-10s %3d cases, %2d error cases", k, perKernel[k], errs[k])
	}
}

// TestCompare checks the tolerance rule on hand-made outputs.
func TestCompare(t *testing.T) {
	w := func(v ...float64) []uint32 {
		out := make([]uint32, len(v))
		for i, x := range v {
			out[i] = math.Float32bits(float32(x))
		}
		return out
	}
	buf := func(view []uint32) [][]uint32 {
		b := []uint32{sentinel}
		b = append(b, view...)
		for range guardTail {
			b = append(b, sentinel)
		}
		return [][]uint32{b}
	}
	c := Case{Name: "x", Kernel: "unary", Tol: 1e-3, Tensors: []Tensor{{Name: "Y", DType: gpu.F32, Len: 4, Off: 1, Out: true}}}
	for _, tc := range []struct {
		name      string
		want, got []uint32
		ok        bool
		c         func(*Case)
	}{
		{"equal", w(1, 2, nan, inf), w(1, 2, nan, inf), true, nil},
		{"within tol of max", w(100, 0, 0, 0), w(100, 0.09, 0, 0), true, nil},
		{"outside tol", w(100, 0, 0, 0), w(100, 0.11, 0, 0), false, nil},
		{"floor 1", w(1e-3, 0, 0, 0), w(1e-3, 9e-4, 0, 0), true, nil},
		{"no floor", w(1e-3, 0, 0, 0), w(1e-3, 9e-4, 0, 0), false, func(c *Case) { c.Floor = -1 }},
		{"per element", w(100, 1, 0, 0), w(100, 1.01, 0, 0), false, func(c *Case) { c.Block = 1 }},
		{"nan where number", w(1, 2, 3, 4), w(1, nan, 3, 4), false, nil},
		{"number where nan", w(1, nan, 3, 4), w(1, 2, 3, 4), false, nil},
		{"inf where number", w(1, 2, 3, 4), w(1, 2, inf, 4), false, nil},
		{"wrong inf sign", w(1, 2, inf, 4), w(1, 2, ninf, 4), false, nil},
	} {
		cc := c
		if tc.c != nil {
			tc.c(&cc)
		}
		r := cc.Compare([][]uint32{tc.want}, buf(tc.got))
		if r.OK() != tc.ok {
			t.Errorf("%s: OK = %v, want %v (%+v)", tc.name, r.OK(), tc.ok, r)
		}
	}
	// A guard element written.
	b := buf(w(1, 2, 3, 4))
	b[0][5] = 0
	if r := c.Compare([][]uint32{w(1, 2, 3, 4)}, b); r.OK() {
		t.Errorf("overwritten guard not detected")
	}
	// An input changed.
	in := c
	in.Tensors = []Tensor{{Name: "X", DType: gpu.F32, Len: 4, Off: 1}}
	if r := in.Compare([][]uint32{w(1, 2, 3, 4)}, buf(w(1, 2, 3, 5))); r.OK() {
		t.Errorf("changed input not detected")
	}
	// i32 outputs are exact.
	it := c
	it.Tensors = []Tensor{{Name: "I", DType: gpu.I32, Len: 4, Off: 1, Out: true}}
	if r := it.Compare([][]uint32{{1, 2, 3, 4}}, buf([]uint32{1, 2, 3, 5})); r.OK() {
		t.Errorf("i32 mismatch not detected")
	}
}

// TestInputsDeterministic checks that data depends only on the case.
func TestInputsDeterministic(t *testing.T) {
	for _, c := range Cases()[:5] {
		a, b := c.Inputs(), c.Inputs()
		for k := range a {
			if !slices.Equal(a[k], b[k]) {
				t.Fatalf("%s: tensor %s differs between two calls", c.Name, c.Tensors[k].Name)
			}
		}
	}
}
