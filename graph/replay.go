package graph

import (
	"encoding/binary"
	"fmt"
	"os"

	"blip/gpu"
)

// A plan's calls never change between runs (dropout keys are read from a
// seed table written each run); on a backend that can capture
// (gpu.Capturer, the Vulkan one) a plan records its calls once and replays
// them, so that running a compiled forward pass or training step costs the
// host one command, not one per kernel.
// BLIP_REPLAY=0 records every call every run instead (to compare, or to
// rule replay out).

var replayOff = os.Getenv("BLIP_REPLAY") == "0"

// Replaying reports whether plans capture and replay their calls where
// the backend can (BLIP_REPLAY is not 0).
func Replaying() bool { return !replayOff }

// replayable reports whether Record replays a capture.
func (p *Plan) replayable() bool {
	if replayOff || len(p.calls) == 0 {
		return false
	}
	_, ok := p.be.(gpu.Capturer)
	return ok
}

// seedTable gives the plan's live dropout calls (P > 0) a device table of
// keys, one (low, high) I32 pair per dropout op (a forward call and its
// backward share the op's salt, hence its slot): the calls read their key
// from it (gpu.Dropout.Seeds), so they stay the same from run to run and a
// training step can be replayed too, and Record writes the run's keys
// there with one Write.
func (p *Plan) seedTable() error {
	slot := map[uint64]int{}
	for i, d := range p.drops {
		if d.call.P == 0 {
			continue // DropoutOff or p = 0: a copy, no key
		}
		s, ok := slot[d.salt]
		if !ok {
			s = len(p.salts)
			slot[d.salt] = s
			p.salts = append(p.salts, d.salt)
		}
		p.drops[i].slot = s
	}
	if len(p.salts) == 0 {
		return nil
	}
	buf, err := p.be.Alloc(int64(8 * len(p.salts)))
	if err != nil {
		return fmt.Errorf("graph: dropout seed table: %w", err)
	}
	p.seeds = buf
	for _, d := range p.drops {
		if d.call.P > 0 {
			d.call.Seeds = gpu.View{Buf: buf, Off: int64(2 * d.slot), Len: 2, DType: gpu.I32}
		}
	}
	return nil
}

// writeSeeds sets this run's dropout keys: dropoutSeed(seed, run, salt) of
// every op, into the table and (for inspection) the calls' Seed fields.
func (p *Plan) writeSeeds() error {
	for _, d := range p.drops {
		d.call.Seed = dropoutSeed(p.seed, p.step, d.salt)
	}
	if p.seeds == nil {
		return nil
	}
	if p.seedBytes == nil {
		p.seedBytes = make([]byte, 8*len(p.salts))
	}
	b := p.seedBytes
	for i, salt := range p.salts {
		binary.LittleEndian.PutUint64(b[8*i:], dropoutSeed(p.seed, p.step, salt))
	}
	return p.be.Write(p.seeds, 0, b)
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
