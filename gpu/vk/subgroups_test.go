package vk

import (
	"os"
	"testing"
)

// TestSubgroupPin checks that a device with the tensor-core kernels and
// subgroup size control (Mesa 26 lavapipe in make test-coopmat) pins their
// pipelines' subgroup size to the one their layout assumes, with full
// subgroups, and no other pipeline's; the tensor-core tests (which create
// those pipelines) run with it. Without the tensor-core kernels nothing is
// pinned.
func TestSubgroupPin(t *testing.T) {
	d := openTest(t)
	if d.coop == "" {
		if d.pinSubgroup {
			t.Fatalf("%s: subgroup size pinned without the tensor-core kernels", d.info.Name)
		}
		t.Skipf("%s: no tensor-core kernels", d.info.Name)
	}
	if !d.phys.pinSubgroup {
		if os.Getenv("BLIP_REQUIRE_COOPMAT") == "1" && d.phys.exts["VK_EXT_subgroup_size_control"] {
			t.Fatalf("%s: VK_EXT_subgroup_size_control listed but not usable for subgroups of %d", d.info.Name, d.info.SubgroupSize)
		}
		t.Skipf("%s: no subgroup size control for subgroups of %d", d.info.Name, d.info.SubgroupSize)
	}
	if !d.pinSubgroup {
		t.Fatalf("%s: subgroup size control offered but not enabled", d.info.Name)
	}
	for _, s := range []string{d.coop, d.attnCoopShader(), d.attnCoopBwdShader()} {
		req := d.subgroupRequirement(s)
		if req == nil {
			t.Fatalf("%s: not pinned", s)
		}
		if get32(req, 0) != stSGSizeStage || get32(req, 16) != uint32(d.info.SubgroupSize) {
			t.Errorf("%s: requirement sType %d size %d, want %d and %d", s, get32(req, 0), get32(req, 16), stSGSizeStage, d.info.SubgroupSize)
		}
		cFree(req)
	}
	for _, s := range []string{"gemm", "attention", "gemm_rows"} {
		if req := d.subgroupRequirement(s); req != nil {
			cFree(req)
			t.Errorf("%s pinned", s)
		}
	}
}
