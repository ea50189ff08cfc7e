package vk

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/paritytest"
)

// TestAttentionCoop runs the F16 attention cases of the parity table
// (attention/f16_*) on the device against the CPU backend, at the cases'
// tolerances (cases_attention_f16.go: the backends round alike, so only
// fp32 summation order differs). On a device with the tensor-core GEMM the
// cases within attention_coop's reach run on it (the others, D = 128, on
// attention.comp's F16 path, as the log says), twice: with the device's
// split of the softmax rows and with another (see below); in CI that is
// Mesa 26 lavapipe (make test-coopmat). Elsewhere it is skipped, unless
// BLIP_REQUIRE_COOPMAT=1 asks for it. TestParity runs the same cases on
// any device, through attention.comp where there is no tensor-core GEMM.
func TestAttentionCoop(t *testing.T) {
	d := openTest(t)
	if d.attnCoopShader() == "" {
		if os.Getenv("BLIP_REQUIRE_COOPMAT") == "1" {
			t.Fatalf("%s: BLIP_REQUIRE_COOPMAT=1 but no cooperative-matrix GEMM (device: KHR %v, NV %v)", d.info.Name, d.info.CoopMatKHR, d.info.CoopMatNV)
		}
		t.Skipf("%s: no cooperative-matrix GEMM, so no tensor-core attention", d.info.Name)
	}
	if !d.useAttnCoop(gpu.Attention{F16: true, AttentionShape: gpu.AttentionShape{B: 1, H: 1, Tq: 1, Tk: 1, D: 64}}) {
		t.Fatalf("%s: %s but attention_coop does not run (subgroup size %d, %d bytes of shared memory, BLIP_ATTN_COOP=%q)",
			d.info.Name, d.attnCoopShader(), d.info.SubgroupSize, d.info.SharedMemBytes, os.Getenv("BLIP_ATTN_COOP"))
	}
	wg := 4 * uint32(d.info.SubgroupSize)
	// Every case runs again with the shader's other softmax split
	// (invocations per row, TPR): on lavapipe (WG 32, TPR 1) that is TPR 2,
	// the shared-memory reductions NVIDIA's workgroups of 128 take.
	auto := attnCoopRowThreads(wg)
	other := 2 * auto
	t.Logf("%s: %s, workgroup %d, rows split over %d and %d invocations", d.info.Name, d.attnCoopShader(), wg, auto, other)
	defer func() { attnCoopTPR = 0 }()
	ref := cpu.New()
	defer ref.Close()
	coop, vec := 0, 0
	for _, c := range paritytest.Cases() {
		if c.Kernel != "attention" || !strings.HasPrefix(c.Name, "attention/f16_") {
			continue
		}
		a := sizedCall(c).(gpu.Attention)
		if useSplit(a.AttentionShape) { // decoding's few queries: attention_split.comp
			t.Run(c.Name, func(t *testing.T) { checkF16Case(t, d, ref, c, "attention_split.comp (F16)") })
			continue
		}
		if !d.useAttnCoop(a) {
			t.Run(c.Name, func(t *testing.T) { checkF16Case(t, d, ref, c, "attention.comp (F16)") })
			continue
		}
		coop++
		if attnCoopStagesVec(t, d, a) {
			vec++
		}
		for _, tpr := range []uint32{auto, other} {
			attnCoopTPR = tpr
			if got := attnCoopRowThreads(wg); got != tpr {
				t.Fatalf("TPR %d refused for workgroup %d (got %d)", tpr, wg, got)
			}
			t.Run(fmt.Sprintf("%s/tpr%d", c.Name, tpr), func(t *testing.T) {
				checkF16Case(t, d, ref, c, fmt.Sprintf("%s TPR %d", d.attnCoopShader(), tpr))
			})
		}
		// Once more rounding in integer arithmetic, the RoundingModeRTE
		// mode stripped (rounding.go).
		attnCoopTPR, d.swRound = auto, true
		t.Run(c.Name+"/swround", func(t *testing.T) {
			checkF16Case(t, d, ref, c, d.attnCoopShader()+" (integer rounding)")
		})
		d.swRound = false
	}
	if coop < 15 {
		t.Fatalf("only %d F16 attention cases ran on %s", coop, d.attnCoopShader())
	}
	// Both stagings of K and V ran: vec4 (the aligned layouts) and
	// element by element (odd D, odd strides, odd offsets).
	if vec < 10 || coop-vec < 3 {
		t.Fatalf("%d F16 attention cases staged K and V as vec4s and %d element by element", vec, coop-vec)
	}
}

// attnCoopStagesVec reports whether a's dispatches stage K and V as vec4s
// (flag 8), all of them or none.
func attnCoopStagesVec(t *testing.T, d *Device, a gpu.Attention) bool {
	t.Helper()
	ds, err := attentionKernel(d, a)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range ds {
		if x.push[19]&8 != 0 {
			n++
		}
	}
	if n != 0 && n != len(ds) {
		t.Fatalf("%d of %d dispatches stage K and V as vec4s", n, len(ds))
	}
	return n > 0
}

// checkF16Case runs c on d and on the CPU backend ref and compares them at
// the case's tolerance; on says which kernel runs it (for the log).
// sizedCall is a case's call on views of its tensors' offsets and sizes, without
// buffers: enough to ask which kernel or shader it takes.
func sizedCall(c paritytest.Case) gpu.Call {
	views := make([]gpu.View, len(c.Tensors))
	for i, tn := range c.Tensors {
		views[i] = gpu.View{Off: int64(tn.Off), Len: int64(tn.Len), DType: tn.DType}
	}
	return c.Build(views)
}

func checkF16Case(t *testing.T, d *Device, ref gpu.Backend, c paritytest.Case, on string) {
	in := c.Inputs()
	rb, err := c.Exec(ref, in)
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]uint32, len(c.Tensors))
	for k, tn := range c.Tensors {
		want[k] = rb[k][tn.Off : tn.Off+tn.Len]
	}
	got, err := c.Exec(d, in)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Compare(want, got)
	t.Logf("%s: worst error %.3g (tol %.3g)", on, r.Worst, c.Tol)
	for _, p := range r.Problems {
		t.Error(p)
	}
	for _, m := range r.Bad {
		t.Errorf("%s[%d] = %s, want %s (error %.3g > tol %.3g)", m.Tensor, m.Index, m.Got, m.Want, m.Err, c.Tol)
	}
}
