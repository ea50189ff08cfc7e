package graph

import (
	"testing"

	"blip/gpu"
	"blip/gpu/gputest"
)

// On the Vulkan backend a plan runs from a capture: run after run with new
// inputs (an inference plan) or new dropout masks (a training step) it
// gives exactly what recording its calls every run gives (same kernels,
// same order).
func TestVulkanReplay(t *testing.T) {
	vk := openVulkan(t)
	run := func(replay bool) []float32 {
		defer setReplay(replay)()
		blk := newBlock(t, vk)
		defer blk.ps.Free()
		plan := blk.compile(t, vk, Config{Outputs: []*Tensor{blk.loss}, DropoutOff: true})
		defer plan.Close()
		var out []float32
		for it := range 3 {
			ids := append([]int32(nil), blk.idv...)
			for i := range ids {
				ids[i] = (ids[i] + int32(it)*7) % blockV
			}
			if err := plan.WriteI32(blk.ids, ids); err != nil {
				t.Fatal(err)
			}
			out = append(out, blk.lossOf(t, plan, false))
		}
		if plan.Replayed() != replay {
			t.Errorf("replay %v: plan.Replayed() = %v", replay, plan.Replayed())
		}
		return out
	}
	direct, replayed := run(false), run(true)
	for it := range direct {
		if direct[it] != replayed[it] {
			t.Errorf("run %d: loss %v replayed, %v recorded call by call", it, replayed[it], direct[it])
		}
	}
	if direct[0] == direct[1] {
		t.Error("the runs' inputs did not change the loss: the comparison proves nothing")
	}

	// Training with live dropout: the keys come from the plan's seed
	// table, so the step is captured too and each run draws new masks.
	trainRuns := func(replay bool) (losses []float32, grads [][][]float32) {
		defer setReplay(replay)()
		blk := newBlock(t, vk)
		defer blk.ps.Free()
		train := blk.compile(t, vk, Config{Loss: blk.loss, Outputs: []*Tensor{blk.loss}})
		defer train.Close()
		train.SetSeed(9)
		for range 3 {
			losses = append(losses, blk.lossOf(t, train, true))
			grads = append(grads, readGrads(t, blk.ps))
		}
		if train.Replayed() != replay {
			t.Errorf("training plan, replay %v: Replayed() = %v", replay, train.Replayed())
		}
		return losses, grads
	}
	ld, gd := trainRuns(false)
	lr, gr := trainRuns(true)
	for run := range ld {
		if ld[run] != lr[run] {
			t.Errorf("training run %d: loss %v replayed, %v call by call", run, lr[run], ld[run])
		}
		for i := range gd[run] {
			if d := maxRelDiff(gr[run][i], gd[run][i]); d != 0 {
				t.Errorf("training run %d: gradient %d differs by %g replayed", run, i, d)
			}
		}
	}
	if ld[0] == ld[1] || ld[1] == ld[2] {
		t.Errorf("losses %v: the dropout masks did not change between runs", ld)
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
			defer setReplay(mode.replay)()
			blk := newBlock(b, vk)
			defer blk.ps.Free()
			plan := blk.compile(b, vk, Config{Outputs: []*Tensor{blk.loss}, DropoutOff: true})
			defer plan.Close()
			b.ResetTimer()
			for range b.N {
				if err := plan.Run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(plan.Stats().Calls), "calls/run")
		})
	}
}

// BenchmarkVulkanPlanRecord times Plan.Record alone (the host's part; the
// Sync that runs the work is outside the timer), for the small block's
// inference plan and its training step with dropout, captured or recorded
// call by call.
func BenchmarkVulkanPlanRecord(b *testing.B) {
	vk := gputest.Vulkan(b)
	for _, train := range []bool{false, true} {
		for _, replay := range []bool{false, true} {
			name := map[bool]string{false: "infer", true: "train"}[train] + "/" + map[bool]string{false: "calls", true: "replay"}[replay]
			b.Run(name, func(b *testing.B) {
				defer setReplay(replay)()
				blk := newBlock(b, vk)
				defer blk.ps.Free()
				cfg := Config{Outputs: []*Tensor{blk.loss}, DropoutOff: true}
				if train {
					cfg = Config{Loss: blk.loss}
				}
				plan := blk.compile(b, vk, cfg)
				defer plan.Close()
				if err := plan.Run(); err != nil { // the capture, outside the timing
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := plan.Record(); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := vk.Sync(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(plan.Stats().Calls), "calls/run")
			})
		}
	}
}

// setReplay turns capture on or off for the plans compiled next and
// returns the function that restores the setting.
func setReplay(on bool) (restore func()) {
	old := replayOff
	replayOff = !on
	return func() { replayOff = old }
}
