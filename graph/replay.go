package graph

import (
	"os"

	"blip/gpu"
)

// A plan's calls never change between runs, except the dropout seeds; on a
// backend that can capture (gpu.Capturer, the Vulkan one) a plan without
// live dropout records its calls once and replays them, so that running a
// compiled forward pass costs the host one command, not one per kernel.
// BLIP_REPLAY=0 records every call every run instead (to compare, or to
// rule replay out).

var replayOff = os.Getenv("BLIP_REPLAY") == "0"

// replayable reports whether Record replays a capture.
func (p *Plan) replayable() bool {
	if replayOff || len(p.calls) == 0 {
		return false
	}
	for _, d := range p.drops {
		if d.call.P > 0 { // a new mask every run (DropoutOff leaves P = 0)
			return false
		}
	}
	_, ok := p.be.(gpu.Capturer)
	return ok
}

// recordReplay records the plan's calls through its capture, taken on
// first use.
func (p *Plan) recordReplay() error {
	if p.replay == nil {
		rp, err := p.be.(gpu.Capturer).Capture(p.calls...)
		if err != nil {
			return err
		}
		p.replay = rp
	}
	return p.replay.Record()
}

// Replayed reports whether the plan runs from a capture (taken at its first
// Record).
func (p *Plan) Replayed() bool { return p.replay != nil }
