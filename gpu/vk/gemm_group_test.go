package vk

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
)

// groupWorld is a few buffers, the same random contents on the device and
// on the CPU backend, for calls that share them as a model's do.
type groupWorld struct {
	t      *testing.T
	d      *Device
	ref    gpu.Backend
	bufs   [][2]gpu.Buffer // device, cpu
	dtypes []gpu.DType
}

func (w *groupWorld) buf(dt gpu.DType, n int, rng *rand.Rand) int {
	raw := make([]byte, n*int(dt.Size()))
	for i := range n {
		v := float32(rng.NormFloat64())
		switch dt {
		case gpu.F16:
			binary.LittleEndian.PutUint16(raw[2*i:], gpu.F32ToF16(v))
		case gpu.BF16:
			binary.LittleEndian.PutUint16(raw[2*i:], gpu.F32ToBF16(v))
		default:
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	}
	var pair [2]gpu.Buffer
	for i, be := range []gpu.Backend{w.d, w.ref} {
		b, err := be.Alloc(int64(len(raw)))
		if err != nil {
			w.t.Fatal(err)
		}
		if err := be.Write(b, 0, raw); err != nil {
			w.t.Fatal(err)
		}
		pair[i] = b
	}
	w.bufs, w.dtypes = append(w.bufs, pair), append(w.dtypes, dt)
	return len(w.bufs) - 1
}

// view is n elements from off of buffer b, on backend side (0 device, 1 cpu).
func (w *groupWorld) view(side, b, off, n int) gpu.View {
	return gpu.View{Buf: w.bufs[b][side], Off: int64(off), Len: int64(n), DType: w.dtypes[b]}
}

// compare reads every f32 buffer back from both sides.
func (w *groupWorld) compare(name string, tol float64) {
	for i, p := range w.bufs {
		if w.dtypes[i] != gpu.F32 {
			continue
		}
		n := p[0].Bytes()
		got, want := make([]byte, n), make([]byte, n)
		if err := w.d.Read(p[0], 0, got); err != nil {
			w.t.Fatal(err)
		}
		if err := w.ref.Read(p[1], 0, want); err != nil {
			w.t.Fatal(err)
		}
		worst := 0.0
		for j := 0; j < int(n); j += 4 {
			g := float64(math.Float32frombits(binary.LittleEndian.Uint32(got[j:])))
			e := float64(math.Float32frombits(binary.LittleEndian.Uint32(want[j:])))
			worst = math.Max(worst, math.Abs(g-e)/math.Max(1, math.Abs(e)))
			if !(math.Abs(g-e) <= tol*math.Max(1, math.Abs(e))) {
				w.t.Fatalf("%s: buffer %d element %d: %v, cpu %v", name, i, j/4, g, e)
			}
		}
	}
}

// TestGemmGroupRows runs adjacent products of one A as decoding records
// them (the query into its own buffer, the key and value into strided
// cache slots of another; one step's rows or a prompt's batches; f32,
// 16-bit weights and F16 products) and checks that they run as one
// dispatch of gemm_rows_seg and give what the CPU backend gives running
// them in order; products that read what another writes, or read another
// A, stay apart and still compute the same.
func TestGemmGroupRows(t *testing.T) {
	d := openTest(t)
	d.rowsMode = rowsAlways
	defer func() { d.rowsMode = rowsAuto }()
	ref := cpu.New()
	defer ref.Close()
	type cfg struct {
		m, n, k, batch, prods int
		bt                    gpu.DType
		f16, bias             bool
		act                   gpu.Act
		clash                 string // "": independent; "c_over_b", "c_over_c", "other_a": the third not grouped
	}
	var cases []cfg
	for _, s := range [][3]int{{1, 768, 768}, {3, 64, 64}, {9, 7, 5}, {32, 33, 64}, {2, 16, 31}} {
		for _, prods := range []int{2, 3} {
			cases = append(cases, cfg{m: s[0], n: s[1], k: s[2], batch: 1, prods: prods, bt: gpu.F32, bias: true})
		}
	}
	cases = append(cases,
		cfg{m: 4, n: 64, k: 64, batch: 3, prods: 3, bt: gpu.F32, bias: true}, // a prompt: rows as batches of its tokens
		cfg{m: 3, n: 64, k: 64, batch: 1, prods: 3, bt: gpu.F16, bias: true},
		cfg{m: 3, n: 40, k: 768, batch: 1, prods: 3, bt: gpu.BF16, bias: true},
		cfg{m: 5, n: 40, k: 64, batch: 1, prods: 3, bt: gpu.F16, f16: true, bias: true},
		cfg{m: 5, n: 40, k: 64, batch: 1, prods: 2, bt: gpu.F32, f16: true, act: gpu.ActGELU},
		cfg{m: 3, n: 64, k: 64, batch: 1, prods: 3, bt: gpu.F32, bias: true, clash: "c_over_b"},
		cfg{m: 3, n: 64, k: 64, batch: 1, prods: 3, bt: gpu.F32, bias: true, clash: "other_a"},
		cfg{m: 3, n: 64, k: 64, batch: 1, prods: 3, bt: gpu.F32, bias: true, clash: "c_over_c"},
	)
	for ci, c := range cases {
		name := fmt.Sprintf("m%dn%dk%d_b%d_x%d_%s_f16%v_act%d_%s", c.m, c.n, c.k, c.batch, c.prods, c.bt, c.f16, c.act, c.clash)
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 9))
			w := &groupWorld{t: t, d: d, ref: ref}
			rows := c.m * c.batch
			// x: the new tokens (and room for a second A); params: the
			// weights and biases with gaps, as a parameter arena lays them
			// out; q: the query's plan buffer; cache: key and value slots,
			// rows ld apart.
			x := w.buf(gpu.F32, 2*rows*c.k+8, rng)
			wgap, bgap := c.n*c.k+12, c.n+4
			params := w.buf(c.bt, c.prods*wgap+8, rng)
			biases := w.buf(gpu.F32, c.prods*bgap+4, rng)
			q := w.buf(gpu.F32, rows*c.n+3, rng)
			ld := 3*c.n + 5
			cache := w.buf(gpu.F32, rows*ld+2*c.n, rng)
			mk := func(side int) []gpu.Call {
				var calls []gpu.Call
				for i := range c.prods {
					g := gpu.Gemm{A: w.view(side, x, 4, rows*c.k), B: w.view(side, params, 4+i*wgap, c.n*c.k),
						M: c.m, N: c.n, K: c.k, TransB: true, F16: c.f16, Act: c.act, Batch: c.batch}
					if c.batch > 1 {
						g.StrideA = int64(c.m * c.k)
					}
					if c.bias {
						g.Bias = w.view(side, biases, 2+i*bgap, c.n)
					}
					if i == 0 {
						g.C = w.view(side, q, 1, rows*c.n)
						g.StrideC = int64(c.m * c.n)
					} else {
						// Rows ld apart in the cache, the key's columns then the value's.
						off := 1 + (i-1)*c.n
						g.C, g.LdC = w.view(side, cache, off, (rows-1)*ld+c.n), ld
						g.StrideC = int64(c.m * ld)
					}
					switch {
					case c.clash == "c_over_b" && i == 1:
						// The key's output over the value's weights, which the
						// value's product then reads.
						g.C, g.LdC = w.view(side, params, 4+2*wgap+7, rows*c.n), 0
					case c.clash == "c_over_c" && i == 2:
						// The value's output over the key's, shifted by a column.
						g.C = w.view(side, cache, 2, (rows-1)*ld+c.n)
					case c.clash == "other_a" && i == 2:
						g.A = w.view(side, x, 4+rows*c.k, rows*c.k)
					}
					if c.batch == 1 {
						g.Batch, g.StrideA, g.StrideC = 0, 0, 0
					}
					calls = append(calls, g)
				}
				return calls
			}
			ds, _, err := d.lower(mk(0))
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if c.clash != "" {
				want = 2 // the first two, then the third alone
			}
			if len(ds) != want || want == 1 && ds[0].shader[:len("gemm_rows_seg")] != "gemm_rows_seg" {
				t.Errorf("%d dispatches (%s ...), want %d", len(ds), ds[0].shader, want)
			}
			if err := d.Do(mk(0)...); err != nil {
				t.Fatal(err)
			}
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := ref.Do(mk(1)...); err != nil {
				t.Fatal(err)
			}
			w.compare(name, 1e-5*math.Sqrt(float64(c.k)))
		})
	}
}
