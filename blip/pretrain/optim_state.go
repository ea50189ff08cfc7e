package pretrain

import (
	"strings"

	"blip/data/safetensors"
	"blip/optim"
)

// OptimPrefix starts the names of the AdamW state tensors in a checkpoint's
// state.safetensors (then torch's per-parameter keys).
const OptimPrefix = "optim."

// AddOptimState adds o's state to w under OptimPrefix: the AdamW state
// and, with loss scaling, the scaler's (optim.KeyLossScale, ...).
func AddOptimState(w *safetensors.Writer, o *optim.AdamW) error {
	st, err := o.State()
	if err != nil {
		return err
	}
	for name, s := range st {
		if s.I64 != nil {
			err = w.AddInt64(OptimPrefix+name, s.Shape, s.I64)
		} else {
			err = w.AddFloat32(OptimPrefix+name, s.Shape, s.F32)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// LoadOptimState reads the state AddOptimState wrote into o (every
// parameter's state must be there, with its shape; a checkpoint without
// scaler state leaves o's scaler at its initial scale).
func LoadOptimState(f *safetensors.File, o *optim.AdamW) error {
	st := map[string]optim.StateTensor{}
	for _, name := range f.Names() {
		if !strings.HasPrefix(name, OptimPrefix) {
			continue
		}
		info, _ := f.Info(name)
		key := strings.TrimPrefix(name, OptimPrefix)
		if info.DType == safetensors.I64 {
			v, err := f.Int64(name)
			if err != nil {
				return err
			}
			st[key] = optim.StateTensor{Shape: info.Shape, I64: v}
			continue
		}
		v, err := f.Float32(name)
		if err != nil {
			return err
		}
		st[key] = optim.StateTensor{Shape: info.Shape, F32: v}
	}
	return o.Load(st)
}
