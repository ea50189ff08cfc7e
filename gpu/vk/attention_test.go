package vk

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/paritytest"
)

// attentionCases are the parity cases of the attention kernels.
func attentionCases() []paritytest.Case {
	var cs []paritytest.Case
	for _, c := range paritytest.Cases() {
		if c.Kernel == "attention" || c.Kernel == "attention_bwd" {
			cs = append(cs, c)
		}
	}
	return cs
}

// TestAttentionGridSplit runs the attention cases against the float64
// references with a grid of at most 3 x 5 x 1 workgroups and 2 MiB
// bindings, so that calls split by batch, query/key tiles and heads.
func TestAttentionGridSplit(t *testing.T) {
	d := openTest(t)
	d.maxBind = 2 << 20
	d.maxGroups = [3]uint32{3, 5, 1}
	for _, c := range attentionCases() {
		t.Run(c.Name, func(t *testing.T) {
			in := c.Inputs()
			want := c.Expected(in)
			bufs, err := c.Exec(d, in)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Compare(want, bufs)
			if !r.OK() {
				t.Fatalf("worst error %.3g at %+v; %d bad; %v", r.Worst, r.WorstAt, r.NBad, r.Problems)
			}
			t.Logf("worst error %.3g", r.Worst)
		})
	}
}

// TestAttentionDeterministic runs a forward and backward three times and
// wants bit-identical results (no atomics, fixed reduction orders), in fp32
// and with F16 (the tensor-core kernels where the device has them).
func TestAttentionDeterministic(t *testing.T) {
	for _, f16 := range []bool{false, true} {
		t.Run(fmt.Sprintf("f16=%v", f16), func(t *testing.T) { testAttentionDeterministic(t, f16) })
	}
}

func testAttentionDeterministic(t *testing.T, f16 bool) {
	d := openTest(t)
	s := gpu.AttentionShape{B: 2, H: 3, Tq: 150, Tk: 150, D: 64, Causal: true}
	n := s.B * s.Tq * s.H * s.D
	rng := rand.New(rand.NewSource(5))
	vs := make([]gpu.View, 9)
	for i := range vs {
		m := n
		if i == 4 {
			m = s.B * s.H * s.Tq
		}
		buf, err := d.Alloc(int64(4 * m))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Free(buf)
		x := make([]float32, m)
		for j := range x {
			x[j] = float32(rng.NormFloat64())
		}
		if err := d.Write(buf, 0, f32bytes(x)); err != nil {
			t.Fatal(err)
		}
		vs[i] = gpu.Whole(buf, gpu.F32)
	}
	fwd := gpu.Attention{Q: vs[0], K: vs[1], V: vs[2], O: vs[3], LSE: vs[4], AttentionShape: s, F16: f16}
	bwd := gpu.AttentionBackward{Q: vs[0], K: vs[1], V: vs[2], O: vs[3], LSE: vs[4], DO: vs[5], DQ: vs[6], DK: vs[7], DV: vs[8], AttentionShape: s, F16: f16}
	var first [][]byte
	for run := 0; run < 3; run++ {
		if err := d.Do(fwd, bwd); err != nil {
			t.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		for i, v := range []gpu.View{vs[3], vs[4], vs[6], vs[7], vs[8]} {
			got := f32bytes(readF32(t, d, v))
			if run == 0 {
				first = append(first, got)
			} else if !bytes.Equal(got, first[i]) {
				t.Fatalf("run %d: output %d differs from run 0", run, i)
			}
		}
	}
}

// TestAttentionSplitOnePass runs every attention parity case that takes the
// split-K path over several key chunks (decoding's cross-attention: 577
// image tokens, masks, causality, F16) with its chunk and combine passes in
// one dispatch (attention_split_one: the last chunk of each (batch, head)
// combines) and in two, against the CPU.
func TestAttentionSplitOnePass(t *testing.T) {
	d := openTest(t)
	defer func() { d.splitTwoPass = false }()
	ref := cpu.New()
	defer ref.Close()
	n := 0
	for _, c := range paritytest.Cases() {
		if c.Kernel != "attention" {
			continue
		}
		a := sizedCall(c).(gpu.Attention)
		if !useSplit(a.AttentionShape) || a.Tk <= splitChunk {
			continue
		}
		n++
		for _, two := range []bool{false, true} {
			d.splitTwoPass = two
			ds, err := attentionKernel(d, a)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			one := 0
			for _, x := range ds {
				if x.shader == "attention_split_one" {
					one++
				}
			}
			if two == (one > 0) {
				t.Errorf("%s (two passes %v): %v", c.Name, two, shaderNames(ds))
			}
			t.Run(fmt.Sprintf("%s/two_passes_%v", c.Name, two), func(t *testing.T) { checkF16Case(t, d, ref, c, shaderNames(ds)[0]) })
		}
	}
	if n < 4 {
		t.Errorf("only %d cases over several key chunks", n)
	}
	// O over Q (in place): the one-pass combine could overwrite queries
	// that other chunks still read, so it takes two dispatches.
	d.splitTwoPass = false
	s := gpu.AttentionShape{B: 1, H: 2, Tq: 1, Tk: 200, D: 8}
	var vs []gpu.View
	for _, n := range []int{2 * 8, 200 * 2 * 8, 200 * 2 * 8} {
		b, err := d.Alloc(int64(4 * n))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Free(b)
		vs = append(vs, gpu.Whole(b, gpu.F32))
	}
	for _, o := range []gpu.View{vs[0], {}} {
		a := gpu.Attention{Q: vs[0], K: vs[1], V: vs[2], O: o, AttentionShape: s}
		if o.Buf == nil {
			b, err := d.Alloc(4 * 16)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Free(b)
			a.O = gpu.Whole(b, gpu.F32)
		}
		ds, err := attentionKernel(d, a)
		if err != nil {
			t.Fatal(err)
		}
		if inPlace := o.Buf != nil; inPlace != (len(ds) == 2) {
			t.Errorf("O over Q %v: %v", inPlace, shaderNames(ds))
		}
	}
}
