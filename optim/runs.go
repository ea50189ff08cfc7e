package optim

import (
	"blip/gpu"
)

// run is a stretch of parameters updated by one AdamW call: consecutive in
// declaration order, hence contiguous in one value buffer (the alignment
// gaps between them hold zeros in value, gradient and moments, and AdamW
// keeps zeros zero), in one group, none frozen, with equal step counts.
// Merging them turns hundreds of per-tensor calls into a few.
type run struct {
	group        int
	val, grad    gpu.View
	m, v         gpu.View
	first, count int // states[first : first+count]
}

// refresh rebuilds the runs (and the gradient-norm calls over them) when
// the Frozen flags changed since they were built, or the step counts did
// (Load), or a Scaler was attached.
func (o *AdamW) refresh() error {
	if len(o.frozen) != len(o.states) {
		o.frozen = make([]bool, len(o.states))
		o.stale = true
	}
	for i, s := range o.states {
		if o.frozen[i] != s.p.Frozen {
			o.frozen[i] = s.p.Frozen
			o.stale = true
		}
	}
	if !o.stale {
		return nil
	}
	o.runs = o.runs[:0]
	for i, s := range o.states {
		if s.p.Frozen {
			continue
		}
		val, grad := s.p.Value(), s.p.Grad()
		if n := len(o.runs); n > 0 {
			r := &o.runs[n-1]
			if r.first+r.count == i && r.group == s.group && o.states[r.first].step == s.step && r.val.Buf == val.Buf {
				end := val.Off + val.Len
				r.count++
				r.val.Len = end - r.val.Off
				r.grad.Len, r.m.Len, r.v.Len = r.val.Len, r.val.Len, r.val.Len
				continue
			}
		}
		o.runs = append(o.runs, run{group: s.group, val: val, grad: grad, m: s.m, v: s.v, first: i, count: 1})
	}
	if o.measures() {
		grads := make([]gpu.View, len(o.runs))
		for i, r := range o.runs {
			grads[i] = r.grad
		}
		if err := o.clip.build(o.be, grads); err != nil {
			return err
		}
	}
	o.stale = false
	return nil
}
