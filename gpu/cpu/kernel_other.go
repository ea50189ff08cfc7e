//go:build !amd64 || purego

package cpu

func sgemmKernel6x16(k int, a, b, c *float32, ldc int) {
	panic("cpu: no assembly GEMM kernel on this platform")
}

var haveKernel = false

const kernelName = ""
