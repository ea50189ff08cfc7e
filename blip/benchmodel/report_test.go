package benchmodel

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"blip/gpu"
	_ "blip/gpu/cpu" // the backend TestBenchModelProfile runs on
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

// --profile: each workload that ran is run again with kernel timing; its
// profile lists the kernels largest first, their sum is the busy time, and
// the table prints it beside the wall clock.
func TestBenchModelProfile(t *testing.T) {
	be, err := gpu.Open(gpu.Options{Backend: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ms := tinyModels(t)
	ws, err := Select(Anchor(), "caption1", "")
	if err != nil {
		t.Fatal(err)
	}
	tm := RunBlip(be, ms, ws, 1, gpu.F32, true, nil)
	p := tm[0].Profile
	if tm[0].Error != "" || p == nil || p.Error != "" {
		t.Fatalf("timing %+v, profile %+v", tm[0], p)
	}
	sum, names := 0.0, map[string]bool{}
	for i, k := range p.Kernels {
		sum += k.Seconds
		names[k.Name] = true
		if i > 0 && k.Seconds > p.Kernels[i-1].Seconds {
			t.Errorf("kernels not largest first: %+v", p.Kernels)
		}
	}
	if !names["gemm"] || !names["attention"] || !(p.GPUSeconds > 0) || math.Abs(sum-p.GPUSeconds) > 1e-9*p.GPUSeconds+1e-12 {
		t.Errorf("profile %+v: want gemm and attention, busy time the kernels' sum", p)
	}
	if tm := RunBlip(be, ms, ws, 1, gpu.F32, false, nil); tm[0].Profile != nil {
		t.Error("a profile without --profile")
	}
	var b bytes.Buffer
	rep := Report{Size: "tiny", Backend: "cpu", Rows: Assemble(ws, ms, tm, nil)}
	rep.Print(&b)
	if !strings.Contains(b.String(), "profile caption1: GPU busy ") {
		t.Errorf("table without the profile line:\n%s", b.String())
	}
}
