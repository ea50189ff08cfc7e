package cpu

import "blip/gpu"

// query_attention: the projection, then the attention, as the two calls run.
func init() {
	twins["query_attention"] = func(c gpu.Call) {
		qa := c.(gpu.QueryAttention)
		gemm(qa.P)
		attention(qa.A)
	}
}
