package cpu

import "blip/gpu"

// gemm_norm: the product, then the LayerNorm, as the two calls run.
func init() {
	twins["gemm_norm"] = func(c gpu.Call) {
		gn := c.(gpu.GemmNorm)
		gemm(gn.G)
		layerNorm(gn.L)
	}
}
