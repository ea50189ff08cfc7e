// Package bench measures kernels on a backend: GFLOP/s and GB/s per kernel and
// shape, for `blip bench kernels`.
package bench

import (
	"fmt"
	"math/rand"
	"strings"
	"time"
	"unsafe"

	"blip/gpu"
)

// Case is one kernel at one shape.
type Case struct {
	Name  string
	Flops float64 // per call
	Bytes float64 // global memory traffic per call (lower bound)
	// Build allocates inputs on b and returns the call to time and a release
	// function.
	Build func(b gpu.Backend) (gpu.Call, func(), error)
	// Big cases are skipped by --quick.
	Big bool
	// GPUOnly cases are too slow for the CPU reference and lavapipe.
	GPUOnly bool
	// Torch describes the same work for torch_kernels.py (the reference
	// measured in the same run).
	Torch map[string]any
}

// Result is the timing of one case on one backend.
type Result struct {
	Case    string  `json:"case"`
	Backend string  `json:"backend"`
	Device  string  `json:"device"`
	Reps    int     `json:"reps"`
	Seconds float64 `json:"seconds_per_call"`
	GFlops  float64 `json:"gflops"`
	GBs     float64 `json:"gb_per_s"`
	Err     string  `json:"error,omitempty"`
}

// alloc makes a view of n random f32 values (or ids below vocab for I32).
func alloc(b gpu.Backend, n int, d gpu.DType, rng *rand.Rand, vocab int) (gpu.View, error) {
	buf, err := b.Alloc(int64(n) * d.Size())
	if err != nil {
		return gpu.View{}, err
	}
	data := make([]float32, n)
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*n)
	switch d {
	case gpu.I32:
		ids := unsafe.Slice((*int32)(unsafe.Pointer(&data[0])), n)
		for i := range ids {
			ids[i] = int32(rng.Intn(vocab))
		}
	case gpu.F16, gpu.BF16:
		h := unsafe.Slice((*uint16)(unsafe.Pointer(&data[0])), n)
		for i := range h {
			if d == gpu.F16 {
				h[i] = gpu.F32ToF16(float32(rng.NormFloat64()))
			} else {
				h[i] = gpu.F32ToBF16(float32(rng.NormFloat64()))
			}
		}
		raw = raw[:2*n]
	default:
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
	}
	if err := b.Write(buf, 0, raw); err != nil {
		b.Free(buf)
		return gpu.View{}, err
	}
	return gpu.View{Buf: buf, Len: int64(n), DType: d}, nil
}

// Run times c on b: one warm-up call, then batches of calls recorded together
// and synchronised once, until minTime has passed (at least 2 calls).
func Run(b gpu.Backend, c Case, minTime time.Duration) Result {
	r := Result{Case: c.Name, Backend: b.Name(), Device: b.Info().Name}
	call, release, err := c.Build(b)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer release()
	if err := do(b, call); err != nil {
		r.Err = err.Error()
		return r
	}
	if err := b.Sync(); err != nil {
		r.Err = err.Error()
		return r
	}
	batch, total := 1, 0
	var elapsed time.Duration
	for elapsed < minTime || total < 2 {
		t := time.Now()
		for i := 0; i < batch; i++ {
			if err := do(b, call); err != nil {
				r.Err = err.Error()
				return r
			}
		}
		if err := b.Sync(); err != nil {
			r.Err = err.Error()
			return r
		}
		elapsed += time.Since(t)
		total += batch
		if per := elapsed / time.Duration(total); per > 0 {
			left := minTime - elapsed
			batch = max(1, min(int(left/per), 4*batch))
		}
	}
	r.Reps = total
	r.Seconds = elapsed.Seconds() / float64(total)
	r.GFlops = c.Flops / r.Seconds / 1e9
	r.GBs = c.Bytes / r.Seconds / 1e9
	return r
}

func release(b gpu.Backend, vs ...gpu.View) func() {
	return func() {
		for _, v := range vs {
			if v.Buf != nil {
				b.Free(v.Buf)
			}
		}
	}
}

// allocs allocates several f32 views; on error it frees what it made.
func allocs(b gpu.Backend, rng *rand.Rand, sizes ...int) ([]gpu.View, error) {
	var vs []gpu.View
	for _, n := range sizes {
		v, err := alloc(b, n, gpu.F32, rng, 0)
		if err != nil {
			release(b, vs...)()
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// GemmCase is C (M,N) = A (M,K) @ B (K,N) [+ bias, act], optionally with B
// transposed (as a linear layer's weight (N,K) is stored).
func GemmCase(m, n, k int, transB, bias bool, act gpu.Act) Case {
	return gemmCase(m, n, k, false, transB, bias, act)
}

// ParseGemm is a GEMM case from "MxNxK", "MxNxK:ab" or "MxNxK:ab:f16" (or
// bf16), a and b being 1 for a transposed A or B and the last part B's
// storage (the shapes of `blip bench kernels --gemm`). PyTorch's reference
// for a 16-bit B multiplies in that type (torch.matmul on half tensors).
func ParseGemm(spec string) (Case, error) {
	shape, rest, _ := strings.Cut(spec, ":")
	tr, dt, _ := strings.Cut(rest, ":")
	var m, n, k int
	bt := map[string]gpu.DType{"": gpu.F32, "f32": gpu.F32, "f16": gpu.F16, "bf16": gpu.BF16}
	b, okType := bt[dt]
	if _, err := fmt.Sscanf(shape, "%dx%dx%d", &m, &n, &k); err != nil || m < 1 || n < 1 || k < 1 || !okType ||
		(tr != "" && (len(tr) != 2 || strings.Trim(tr, "01") != "")) {
		return Case{}, fmt.Errorf("--gemm %q: want MxNxK, MxNxK:ab or MxNxK:ab:f16|bf16 with a, b in {0, 1}", spec)
	}
	c := gemmCase(m, n, k, tr != "" && tr[0] == '1', tr != "" && tr[1] == '1', false, gpu.ActNone)
	if b != gpu.F32 {
		c = halfB(c, b)
	}
	return c, nil
}

// halfB turns a GEMM case into one with B stored as d (f16 or bf16), with
// f16 products (Gemm.F16) for f16.
func halfB(c Case, d gpu.DType) Case {
	c.Name += " B " + d.String()
	c.Torch["dtype"] = map[gpu.DType]string{gpu.F16: "float16", gpu.BF16: "bfloat16"}[d]
	build := c.Build
	c.Build = func(b gpu.Backend) (gpu.Call, func(), error) {
		call, rel, err := build(b)
		if err != nil {
			return nil, nil, err
		}
		g := call.(gpu.Gemm)
		h, err := alloc(b, int(g.B.Len), d, rand.New(rand.NewSource(6)), 0)
		if err != nil {
			rel()
			return nil, nil, err
		}
		g.B = h
		// An f16 B is fp16 inference's product: f16 operands, what the
		// tensor-core kernel runs (bf16 has no such kernel here).
		g.F16 = d == gpu.F16
		return g, func() { rel(); release(b, h)() }, nil
	}
	return c
}

func gemmCase(m, n, k int, transA, transB, bias bool, act gpu.Act) Case {
	name := fmt.Sprintf("gemm %dx%dx%d", m, n, k)
	if transA {
		name += " A^T"
	}
	if transB {
		name += " B^T"
	}
	if bias {
		name += " +bias"
	}
	if act == gpu.ActGELU {
		name += " gelu"
	}
	return Case{
		Name:  name,
		Flops: 2 * float64(m) * float64(n) * float64(k),
		Bytes: 4 * float64(m*k+k*n+m*n),
		Big:   float64(m)*float64(n)*float64(k) > 2e9,
		Torch: map[string]any{"op": "gemm", "m": m, "n": n, "k": k, "trans_a": transA, "trans_b": transB, "bias": bias, "gelu": act == gpu.ActGELU},
		Build: func(b gpu.Backend) (gpu.Call, func(), error) {
			rng := rand.New(rand.NewSource(1))
			sizes := []int{m * k, k * n, m * n}
			if bias {
				sizes = append(sizes, n)
			}
			vs, err := allocs(b, rng, sizes...)
			if err != nil {
				return nil, nil, err
			}
			g := gpu.Gemm{A: vs[0], B: vs[1], C: vs[2], M: m, N: n, K: k, TransA: transA, TransB: transB, Act: act}
			if bias {
				g.Bias = vs[3]
			}
			return g, release(b, vs...), nil
		},
	}
}

// RowCase benchmarks a row kernel (softmax, layernorm, reduce) on (rows, cols).
func RowCase(kernel string, rows, cols int) Case {
	n := float64(rows) * float64(cols)
	c := Case{Name: fmt.Sprintf("%s %dx%d", kernel, rows, cols), Bytes: 8 * n, Flops: 5 * n,
		Torch: map[string]any{"op": kernel, "rows": rows, "cols": cols}}
	c.Build = func(b gpu.Backend) (gpu.Call, func(), error) {
		rng := rand.New(rand.NewSource(2))
		vs, err := allocs(b, rng, rows*cols, rows*cols, cols, cols)
		if err != nil {
			return nil, nil, err
		}
		var call gpu.Call
		switch kernel {
		case "softmax":
			call = gpu.Softmax{X: vs[0], Y: vs[1], Rows: rows, Cols: cols}
		case "layernorm":
			call = gpu.LayerNorm{X: vs[0], Y: vs[1], Gamma: vs[2], Beta: vs[3], Rows: rows, Cols: cols, Eps: 1e-12}
		default:
			call = gpu.Reduce{Op: gpu.ReduceSum, X: vs[0], Y: vs[1], Rows: rows, Cols: cols}
		}
		return call, release(b, vs...), nil
	}
	return c
}

// ElementwiseCase benchmarks exact GELU and a broadcast add over n elements.
func ElementwiseCase(kernel string, n int) Case {
	c := Case{Name: fmt.Sprintf("%s %d", kernel, n), Bytes: 8 * float64(n), Flops: float64(n),
		Torch: map[string]any{"op": kernel, "n": n}}
	if kernel == "add" {
		c.Bytes = 12 * float64(n)
	} else {
		c.Flops = 20 * float64(n)
	}
	c.Build = func(b gpu.Backend) (gpu.Call, func(), error) {
		rng := rand.New(rand.NewSource(3))
		vs, err := allocs(b, rng, n, n, n)
		if err != nil {
			return nil, nil, err
		}
		if kernel == "add" {
			return gpu.Binary{Op: gpu.BinaryAdd, A: vs[0], B: vs[1], C: vs[2], N: n}, release(b, vs...), nil
		}
		return gpu.Unary{Op: gpu.UnaryGELU, X: vs[0], Y: vs[2], N: n}, release(b, vs...), nil
	}
	return c
}

// Cases is the kernel benchmark set: GEMM at 1024^3 and the BLIP shapes
// (ViT-B/16 at 384px has 577 tokens; qkv 768->2304, MLP 768->3072), row
// kernels and elementwise ops at transformer sizes.
func Cases() []Case {
	return []Case{
		GemmCase(1024, 1024, 1024, false, false, gpu.ActNone),
		GemmCase(577, 2304, 768, true, true, gpu.ActNone),
		GemmCase(577, 3072, 768, true, true, gpu.ActGELU),
		GemmCase(2048, 2048, 2048, false, false, gpu.ActNone),
		withGPUOnly(GemmCase(4096, 4096, 4096, false, false, gpu.ActNone)),
		withGPUOnly(GemmCase(32*577, 3072, 768, true, false, gpu.ActNone)),
		RowCase("softmax", 12*577, 577),
		RowCase("layernorm", 32*577, 768),
		RowCase("reduce", 4096, 4096),
		ElementwiseCase("gelu", 577*3072),
		ElementwiseCase("add", 577*768*8),
		AttentionCase(32, 12, 577, 64, false),
		withGPUOnly(AttentionCase(32, 12, 577, 64, true)),
		AttentionDecodeCase(3, 12, 577, 64),
	}
}

// Seq is several calls timed together as one case (a forward and its
// backward): Run records them in one Do.
type Seq []gpu.Call

// Kernel implements gpu.Call.
func (s Seq) Kernel() string {
	var n []string
	for _, c := range s {
		n = append(n, c.Kernel())
	}
	return strings.Join(n, "+")
}

// Check implements gpu.Call.
func (s Seq) Check() error {
	for _, c := range s {
		if err := c.Check(); err != nil {
			return err
		}
	}
	return nil
}

func do(b gpu.Backend, c gpu.Call) error {
	if s, ok := c.(Seq); ok {
		return b.Do(s...)
	}
	return b.Do(c)
}

// AttentionCase is fused self-attention over (B, T, H*D) tensors, forward
// (4*B*H*T*T*D flops) or forward and backward (3.5 times that: the backward
// counted as its five T x T x D matrix products, though attention_bwd
// recomputes two more).
func AttentionCase(b, h, t, d int, backward bool) Case {
	return attentionCase(b, h, t, d, backward, false)
}

// attentionCase is AttentionCase, its forward with F16 (and PyTorch's on
// half tensors) if f16.
func attentionCase(b, h, t, d int, backward, f16 bool) Case {
	n := b * t * h * d
	name := fmt.Sprintf("attention %dx%dx%dx%d", b, h, t, d)
	flops := 4 * float64(b) * float64(h) * float64(t) * float64(t) * float64(d)
	bytes := 4 * 4 * float64(n)
	if backward {
		name += " fwd+bwd"
		flops *= 3.5
		bytes += 4 * 7 * float64(n)
	}
	torch := map[string]any{"op": "attention", "b": b, "h": h, "t": t, "d": d, "backward": backward}
	if f16 {
		name += " f16"
		torch["dtype"] = "float16"
	}
	return Case{
		Name: name, Flops: flops, Bytes: bytes, Big: true, Torch: torch,
		Build: func(be gpu.Backend) (gpu.Call, func(), error) {
			rng := rand.New(rand.NewSource(4))
			sizes := []int{n, n, n, n, b * h * t}
			if backward {
				sizes = append(sizes, n, n, n, n)
			}
			vs, err := allocs(be, rng, sizes...)
			if err != nil {
				return nil, nil, err
			}
			shape := gpu.AttentionShape{B: b, H: h, Tq: t, Tk: t, D: d}
			fwd := gpu.Attention{Q: vs[0], K: vs[1], V: vs[2], O: vs[3], LSE: vs[4], AttentionShape: shape, F16: f16}
			if !backward {
				return fwd, release(be, vs...), nil
			}
			bwd := gpu.AttentionBackward{Q: vs[0], K: vs[1], V: vs[2], O: vs[3], LSE: vs[4], DO: vs[5],
				DQ: vs[6], DK: vs[7], DV: vs[8], AttentionShape: shape, F16: f16}
			return Seq{fwd, bwd}, release(be, vs...), nil
		},
	}
}

// ParseAttention is an attention case from "BxHxTxD[:f16|:f32][:bwd]"
// (`blip bench kernels --attention`): the forward, or with bwd the forward
// and the backward. The f16 one is Attention.F16 (and
// AttentionBackward.F16: f16-rounded operands, fp32 softmax and
// accumulation, the tensor-core kernels where the device has them);
// PyTorch's reference for it is SDPA on half tensors. "BxHxTqxTkxD[:f16|:f32]"
// is a forward of Tq queries over Tk keys: a decoding step's shapes (Tq 1,
// Tk the tokens so far or the image's).
func ParseAttention(spec string) (Case, error) {
	bad := fmt.Errorf("--attention %q: want BxHxTxD, optionally :f16 or :f32, then optionally :bwd; or BxHxTqxTkxD, optionally :f16 or :f32", spec)
	parts := strings.Split(spec, ":")
	var b, h, tq, tk, d int
	switch strings.Count(parts[0], "x") {
	case 3:
		if _, err := fmt.Sscanf(parts[0], "%dx%dx%dx%d", &b, &h, &tq, &d); err != nil || fmt.Sprintf("%dx%dx%dx%d", b, h, tq, d) != parts[0] {
			return Case{}, bad
		}
		tk = tq
	case 4:
		if _, err := fmt.Sscanf(parts[0], "%dx%dx%dx%dx%d", &b, &h, &tq, &tk, &d); err != nil || fmt.Sprintf("%dx%dx%dx%dx%d", b, h, tq, tk, d) != parts[0] {
			return Case{}, bad
		}
	default:
		return Case{}, bad
	}
	if b < 1 || h < 1 || tq < 1 || tk < 1 || d < 1 || len(parts) > 3 {
		return Case{}, bad
	}
	f16, bwd := false, false
	for i, p := range parts[1:] {
		switch {
		case i == 0 && (p == "f16" || p == "f32"):
			f16 = p == "f16"
		case p == "bwd" && !bwd && strings.Count(parts[0], "x") == 3:
			bwd = true
		default:
			return Case{}, bad
		}
	}
	if strings.Count(parts[0], "x") == 4 {
		return attentionQKCase(b, h, tq, tk, d, f16), nil
	}
	return attentionCase(b, h, tq, d, bwd, f16), nil
}

// attentionQKCase is the forward of tq queries over tk keys per (batch,
// head), with F16 if f16: 4*B*H*Tq*Tk*D flops; its bytes are Q, K, V and
// O once each.
func attentionQKCase(b, h, tq, tk, d int, f16 bool) Case {
	q, kv := b*tq*h*d, b*tk*h*d
	name := fmt.Sprintf("attention %dx%dx%dx%dx%d", b, h, tq, tk, d)
	torch := map[string]any{"op": "attention", "b": b, "h": h, "tq": tq, "t": tk, "d": d, "backward": false}
	if f16 {
		name += " f16"
		torch["dtype"] = "float16"
	}
	return Case{
		Name:  name,
		Flops: 4 * float64(b) * float64(h) * float64(tq) * float64(tk) * float64(d),
		Bytes: 4 * (2*float64(q) + 2*float64(kv)),
		Torch: torch,
		Build: func(be gpu.Backend) (gpu.Call, func(), error) {
			vs, err := allocs(be, rand.New(rand.NewSource(5)), q, kv, kv, q)
			if err != nil {
				return nil, nil, err
			}
			shape := gpu.AttentionShape{B: b, H: h, Tq: tq, Tk: tk, D: d}
			return gpu.Attention{Q: vs[0], K: vs[1], V: vs[2], O: vs[3], AttentionShape: shape, F16: f16}, release(be, vs...), nil
		},
	}
}

// AttentionDecodeCase is one decoding step's cross-attention: one query
// per (batch, head) over tk image tokens, as beam search runs it for every
// new token (the split-K path on Vulkan). Its cost is reading K and V.
func AttentionDecodeCase(b, h, tk, d int) Case {
	c := attentionQKCase(b, h, 1, tk, d, false)
	c.Name = fmt.Sprintf("attention decode %dx%dx1x%dx%d", b, h, tk, d)
	return c
}

func withGPUOnly(c Case) Case {
	c.GPUOnly, c.Big = true, true
	return c
}
