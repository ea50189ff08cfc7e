package optim

import (
	"fmt"
	"unsafe"

	"blip/graph"
)

// StateTensor is one tensor of optimiser state: F32 data (the moments) or
// I64 data (the step count), row-major in Shape. It maps onto
// safetensors.Writer.AddFloat32 / AddInt64 and back.
type StateTensor struct {
	Shape []int64
	F32   []float32
	I64   []int64
}

// State key suffixes, after the parameter's name: torch's names for the
// AdamW state of one parameter.
const (
	KeyExpAvg   = ".exp_avg"    // first moment, the param's shape, F32
	KeyExpAvgSq = ".exp_avg_sq" // second moment, the param's shape, F32
	KeyStep     = ".step"       // updates applied, shape [1], I64
)

// State reads the moments and step counts of every parameter (frozen ones
// included) into a map keyed by name + KeyExpAvg, KeyExpAvgSq, KeyStep,
// and with a Scaler attached its state under KeyLossScale,
// KeyGrowthTracker and KeySkipped, for a checkpoint. It reads device
// memory, so it waits for the work recorded before it.
func (o *AdamW) State() (map[string]StateTensor, error) {
	if o.freed {
		return nil, fmt.Errorf("optim: State after Free")
	}
	st := make(map[string]StateTensor, 3*len(o.states))
	for _, s := range o.states {
		shape := shape64(s.p.Shape())
		m := make([]float32, s.m.Len)
		v := make([]float32, s.v.Len)
		if err := o.be.Read(s.m.Buf, s.m.ByteOff(), f32Bytes(m)); err != nil {
			return nil, fmt.Errorf("optim: state of %q: %w", s.p.Name(), err)
		}
		if err := o.be.Read(s.v.Buf, s.v.ByteOff(), f32Bytes(v)); err != nil {
			return nil, fmt.Errorf("optim: state of %q: %w", s.p.Name(), err)
		}
		name := s.p.Name()
		st[name+KeyExpAvg] = StateTensor{Shape: shape, F32: m}
		st[name+KeyExpAvgSq] = StateTensor{Shape: shape, F32: v}
		st[name+KeyStep] = StateTensor{Shape: []int64{1}, I64: []int64{s.step}}
	}
	if o.scaler != nil {
		o.scaler.state(st)
	}
	return st, nil
}

// Load restores the state State saved. Every parameter's three entries
// must be present with matching shapes (other keys, such as model weights
// kept in the same file, are ignored); nothing is written unless all are.
// An attached Scaler takes the scaler entries when st has them and keeps
// its own state when it has none (a checkpoint of a run without loss
// scaling); without a Scaler they are ignored. The learning rate is not
// state: the schedule sets it.
func (o *AdamW) Load(st map[string]StateTensor) error {
	if o.freed {
		return fmt.Errorf("optim: Load after Free")
	}
	type entry struct {
		s    *pstate
		m, v []float32
		step int64
	}
	entries := make([]entry, 0, len(o.states))
	for _, s := range o.states {
		name := s.p.Name()
		want := shape64(s.p.Shape())
		e := entry{s: s}
		for _, k := range []struct {
			key string
			dst *[]float32
		}{{name + KeyExpAvg, &e.m}, {name + KeyExpAvgSq, &e.v}} {
			t, ok := st[k.key]
			if !ok {
				return fmt.Errorf("optim: load: no %q", k.key)
			}
			if !sameShape(t.Shape, want) || int64(len(t.F32)) != s.m.Len {
				return fmt.Errorf("optim: load: %q is %v with %d f32 values, want %v", k.key, t.Shape, len(t.F32), want)
			}
			*k.dst = t.F32
		}
		t, ok := st[name+KeyStep]
		if !ok {
			return fmt.Errorf("optim: load: no %q", name+KeyStep)
		}
		if len(t.I64) != 1 || t.I64[0] < 0 {
			return fmt.Errorf("optim: load: %q must hold one int64 >= 0, got %v", name+KeyStep, t.I64)
		}
		e.step = t.I64[0]
		entries = append(entries, e)
	}
	var scaler Scaler
	loadScaler := false
	if o.scaler != nil {
		var err error
		if scaler, loadScaler, err = o.scaler.parseState(st); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := o.be.Write(e.s.m.Buf, e.s.m.ByteOff(), f32Bytes(e.m)); err != nil {
			return fmt.Errorf("optim: load %q: %w", e.s.p.Name(), err)
		}
		if err := o.be.Write(e.s.v.Buf, e.s.v.ByteOff(), f32Bytes(e.v)); err != nil {
			return fmt.Errorf("optim: load %q: %w", e.s.p.Name(), err)
		}
		e.s.step = e.step
	}
	if loadScaler {
		*o.scaler = scaler
	}
	o.stale = true // runs group equal step counts
	return nil
}

func shape64(s graph.Shape) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// f32Bytes views a slice as its bytes, without copying.
func f32Bytes(s []float32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*4)
}
