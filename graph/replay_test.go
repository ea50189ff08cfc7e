package graph

import (
	"testing"

	"blip/gpu"
	"blip/gpu/gputest"
)

// On the Vulkan backend an inference plan (dropout off) runs from a
// capture: run after run with new inputs it gives exactly what recording
// its calls every run gives (same kernels, same order), and a training
// plan with live dropout is never captured (its seeds change every run).
func TestVulkanReplay(t *testing.T) {
	vk := openVulkan(t)
	run := func(replay bool) [][]float32 {
		old := replayOff
		replayOff = !replay
		defer func() { replayOff = old }()
		blk := newBlock(t, vk)
		defer blk.ps.Free()
		plan, err := blk.g.Compile(vk, Config{Outputs: []*Tensor{blk.loss}, DropoutOff: true})
		if err != nil {
			t.Fatal(err)
		}
		defer plan.Close()
		blk.write(t, plan)
		var out [][]float32
		for it := range 3 {
			ids := append([]int32(nil), blk.idv...)
			for i := range ids {
				ids[i] = (ids[i] + int32(it)*7) % blockV
			}
			if err := plan.WriteI32(blk.ids, ids); err != nil {
				t.Fatal(err)
			}
			if err := plan.Run(); err != nil {
				t.Fatal(err)
			}
			l := make([]float32, 1)
			if err := plan.ReadF32(blk.loss, l); err != nil {
				t.Fatal(err)
			}
			out = append(out, l)
		}
		if plan.Replayed() != replay {
			t.Errorf("replay %v: plan.Replayed() = %v", replay, plan.Replayed())
		}
		return out
	}
	direct, replayed := run(false), run(true)
	for it := range direct {
		if direct[it][0] != replayed[it][0] {
			t.Errorf("run %d: loss %v replayed, %v recorded call by call", it, replayed[it][0], direct[it][0])
		}
	}
	if direct[0][0] == direct[1][0] {
		t.Error("the runs' inputs did not change the loss: the comparison proves nothing")
	}

	blk := newBlock(t, vk)
	defer blk.ps.Free()
	train, err := blk.g.Compile(vk, Config{Loss: blk.loss})
	if err != nil {
		t.Fatal(err)
	}
	defer train.Close()
	blk.write(t, train)
	if err := train.Run(); err != nil {
		t.Fatal(err)
	}
	if train.Replayed() {
		t.Error("a plan with live dropout was captured")
	}
	if _, ok := vk.(gpu.Capturer); !ok {
		t.Error("the Vulkan backend does not capture")
	}
}

// BenchmarkVulkanPlanRun times one run (record and sync) of the small
// transformer block's inference plan, captured or recorded call by call:
// with shapes this small the time is mostly the host's.
func BenchmarkVulkanPlanRun(b *testing.B) {
	vk := gputest.Vulkan(b)
	for _, mode := range []struct {
		name   string
		replay bool
	}{{"calls", false}, {"replay", true}} {
		b.Run(mode.name, func(b *testing.B) {
			old := replayOff
			replayOff = !mode.replay
			defer func() { replayOff = old }()
			blk := newBlock(b, vk)
			defer blk.ps.Free()
			plan, err := blk.g.Compile(vk, Config{Outputs: []*Tensor{blk.loss}, DropoutOff: true})
			if err != nil {
				b.Fatal(err)
			}
			defer plan.Close()
			blk.write(b, plan)
			b.ReportMetric(float64(plan.Stats().Calls), "calls/run")
			b.ResetTimer()
			for range b.N {
				if err := plan.Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
