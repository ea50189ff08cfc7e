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

// TestAttentionCoopBwd runs the F16 backward cases of the parity table
// (attention_bwd/f16_*) on the device against the CPU backend at the
// cases' tolerances: on attention_coop_bwd where the device has the
// tensor-core attention (Mesa 26 lavapipe in make test-coopmat), with the
// hardware rounding and, for D > 32, once more with the integer rounding
// (rounding.go);
// the cases out of its reach (D = 128) on attention_bwd.comp's F16 path.
// Skipped without the tensor-core GEMM unless BLIP_REQUIRE_COOPMAT=1.
func TestAttentionCoopBwd(t *testing.T) {
	d := openTest(t)
	if d.attnCoopBwdShader() == "" {
		if os.Getenv("BLIP_REQUIRE_COOPMAT") == "1" {
			t.Fatalf("%s: BLIP_REQUIRE_COOPMAT=1 but no cooperative-matrix GEMM", d.info.Name)
		}
		t.Skipf("%s: no cooperative-matrix GEMM, so no tensor-core attention", d.info.Name)
	}
	probe := gpu.AttentionBackward{F16: true, AttentionShape: gpu.AttentionShape{B: 1, H: 1, Tq: 1, Tk: 1, D: 64}}
	if !d.useAttnCoopBwd(probe) {
		t.Fatalf("%s: %s but attention_coop_bwd does not run (subgroup size %d, %d bytes of shared memory)",
			d.info.Name, d.attnCoopBwdShader(), d.info.SubgroupSize, d.info.SharedMemBytes)
	}
	ref := cpu.New()
	defer ref.Close()
	coop, swr, vec, kinds := 0, 0, 0, map[string]int{}
	for _, c := range paritytest.Cases() {
		if c.Kernel != "attention_bwd" || !strings.HasPrefix(c.Name, "attention_bwd/f16_") {
			continue
		}
		a := sizedCall(c).(gpu.AttentionBackward)
		if !a.F16 {
			t.Fatalf("%s: F16 not set", c.Name)
		}
		if !d.useAttnCoopBwd(a) {
			t.Run(c.Name, func(t *testing.T) { checkF16Case(t, d, ref, c, "attention_bwd.comp (F16)") })
			continue
		}
		coop++
		ds, err := attentionBwdKernel(d, a)
		if err != nil {
			t.Fatal(err)
		}
		nv := 0
		for _, x := range ds {
			if x.shader != d.attnCoopBwdShader() {
				t.Fatalf("%s: dispatch of %s, want %s", c.Name, x.shader, d.attnCoopBwdShader())
			}
			kinds[attnCoopBwdKind(x)]++
			if x.push[22]&16 != 0 {
				nv++
			}
		}
		switch nv {
		case len(ds):
			vec++
		case 0:
		default:
			t.Fatalf("%s: %d of %d dispatches fetch vec4 tiles", c.Name, nv, len(ds))
		}
		t.Run(c.Name, func(t *testing.T) { checkF16Case(t, d, ref, c, d.attnCoopBwdShader()) })
		// The integer rounding on the head sizes padded to 64 only: every
		// other pipeline costs lavapipe minutes to build, and the rounding
		// does not depend on the padding.
		if a.D > 32 {
			swr++
			d.swRound = true
			t.Run(c.Name+"/swround", func(t *testing.T) {
				checkF16Case(t, d, ref, c, d.attnCoopBwdShader()+" (integer rounding)")
			})
			d.swRound = false
		}
	}
	if swr < 5 {
		t.Errorf("only %d cases ran with the integer rounding", swr)
	}
	if coop < 15 {
		t.Fatalf("only %d F16 backward cases ran on %s", coop, d.attnCoopBwdShader())
	}
	// Both stagings of the walked tiles ran: vec4 (aligned layouts) and
	// element by element (odd D, strides or offsets).
	if vec < 10 || coop-vec < 3 {
		t.Errorf("%d F16 backward cases fetched vec4 tiles and %d element by element", vec, coop-vec)
	}
	// Every pass ran: dQ, dK+dV through one binding, and dV and dK apart.
	for _, k := range []string{"dQ", "dK+dV", "dK", "dV"} {
		if kinds[k] == 0 {
			t.Errorf("no %s dispatch (%v)", k, kinds)
		}
	}
	t.Logf("%d cases on %s (%d with vec4 tiles); dispatches %v", coop, d.attnCoopBwdShader(), vec, kinds)

	// Calls split by batch (bindings of 2 MiB, one batch per dispatch),
	// query and key tiles and heads (grids of at most 3 x 5): the shader's
	// tile and head bases and the views of each chunk.
	maxBind, maxGroups := d.maxBind, d.maxGroups
	defer func() { d.maxBind, d.maxGroups = maxBind, maxGroups }()
	d.maxBind, d.maxGroups = 2<<20, [3]uint32{3, 5, 1}
	split := 0
	for _, c := range paritytest.Cases() {
		if c.Kernel != "attention_bwd" || !strings.HasPrefix(c.Name, "attention_bwd/f16_") {
			continue
		}
		a := sizedCall(c).(gpu.AttentionBackward)
		if !d.useAttnCoopBwd(a) || a.B*a.H*max(a.Tq, a.Tk) < 1000 {
			continue
		}
		ds, err := attentionBwdKernel(d, a)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) <= 3 {
			continue
		}
		split++
		t.Run(c.Name+"/grid_split", func(t *testing.T) {
			checkF16Case(t, d, ref, c, fmt.Sprintf("%s in %d dispatches", d.attnCoopBwdShader(), len(ds)))
		})
	}
	if split < 3 {
		t.Errorf("only %d cases split into more than 3 dispatches", split)
	}
}

// attnCoopBwdKind names the pass of an attention_coop_bwd dispatch: its
// MODE (specialization constant 2) and output flags (push constant 22).
func attnCoopBwdKind(x dispatch) string {
	if x.spec[2] == 0 {
		return "dQ"
	}
	return map[uint32]string{4: "dK", 8: "dV", 12: "dK+dV"}[x.push[22]&12]
}
