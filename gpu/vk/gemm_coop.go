package vk

import (
	"os"

	"blip/gpu"
)

// Tensor-core GEMM (shaders/gemm_coop.comp, NV cooperative matrices) for
// products whose B is f16: the weights under --precision fp16. A is
// rounded to f16 on the way in (as autocast does), accumulation is fp32.
//
// It is opt-in (BLIP_COOPMAT=1) until it has passed the parity table on a
// GPU: no device this project has tested on so far exposed it to a run.
// The device must offer VK_NV_cooperative_matrix, f16 arithmetic and the
// Vulkan memory model; elsewhere the tiled shaders run as before.
var coopOptIn = os.Getenv("BLIP_COOPMAT") == "1"

// coopTile is gemm_coop.comp's fixed block (its BM x BN).
var coopTile = gemmTile{bm: 64, bn: 64, bk: 32, tm: 16, tn: 16, eff: 1, coop: true}

// useCoop reports whether g runs on gemm_coop.comp.
func (d *Device) useCoop(g gpu.Gemm) bool {
	return d.coop && g.B.DType == gpu.F16
}

func (d *Device) coopDispatch(s *gemmShape, av, bv, cv, bias gpu.View, push []uint32, groups [3]uint32) dispatch {
	return dispatch{
		shader: "gemm_coop",
		spec:   []uint32{128, b2u(s.ta), b2u(s.tb)},
		binds:  []binding{rd(av), rd(bv), wr(cv), rd(bias)},
		push:   push,
		groups: groups,
	}
}
