package benchmodel

import (
	"bytes"
	"strings"
	"testing"

	"blip/gpu"
)

// The header says which fast paths a Vulkan run took, so that GPU tables
// can be read without the command line; a CPU run has none to report.
func TestReportHeader(t *testing.T) {
	for _, c := range []struct {
		rep  Report
		want string
	}{
		{Report{Size: "tiny", Backend: "vulkan:0", Device: gpu.DeviceInfo{Name: "GPU", CoopGemm: "KHR 16x16x16"}, Replay: true},
			"tensor-core GEMM for fp16 products: KHR 16x16x16; plans replayed from captured command buffers: true"},
		{Report{Size: "tiny", Backend: "vulkan:0", Device: gpu.DeviceInfo{Name: "llvmpipe"}},
			"tensor-core GEMM for fp16 products: none; plans replayed from captured command buffers: false"},
		{Report{Size: "tiny", Backend: "cpu", Device: gpu.DeviceInfo{Name: "Go"}}, ""},
	} {
		var b bytes.Buffer
		c.rep.Print(&b)
		got := b.String()
		if c.want == "" {
			if strings.Contains(got, "tensor-core") {
				t.Errorf("%s: header reports fast paths:\n%s", c.rep.Backend, got)
			}
		} else if !strings.Contains(got, c.want) {
			t.Errorf("%s: header\n%s\nlacks %q", c.rep.Backend, got, c.want)
		}
	}
}
