package pretrain

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"blip/blip"
	"blip/data/safetensors"
	"blip/gpu"
	"blip/graph"
)

// A checkpoint is a folder:
//
//	state.safetensors  every parameter by its HF name, the momentum copies
//	                   ("vision_model_m...."), the queues ("queue.image",
//	                   "queue.text") and the AdamW state ("optim." + torch's
//	                   per-parameter keys; in fp16 runs also the loss
//	                   scaler's "optim.scaler.scale", ".growth_tracker"
//	                   and ".skipped", so that a resumed run keeps its
//	                   scale)
//	state.json         State, and the config the run was started with
//
// written to a temporary sibling and renamed into place, so that a crash
// leaves the previous checkpoint whole.
const (
	stateTensors = "state.safetensors"
	stateFile    = "state.json"
)

type stateJSON struct {
	State  State           `json:"state"`
	Config json.RawMessage `json:"config"`
}

// Save writes the trainer's checkpoint to dir atomically.
func (t *Trainer) Save(dir string) error {
	w := safetensors.NewWriter()
	add := func(name string, shape []int64, v []float32) error { return w.AddFloat32(name, shape, v) }
	for _, ps := range []*graph.Params{t.Model.Params, t.Model.Momentum} {
		for _, p := range ps.List() {
			v := make([]float32, p.Numel())
			if err := p.Read(v); err != nil {
				return err
			}
			if err := add(p.Name(), shape64(t.Model.StoredShape(p)), v); err != nil {
				return err
			}
		}
	}
	q, d := t.Config.QueueSize, t.Model.Config.ImageTextHiddenSize
	for name, x := range map[string]*graph.Tensor{"queue.image": t.in.ImageQueue, "queue.text": t.in.TextQueue} {
		v := make([]float32, q*d)
		if err := t.plan.ReadF32(x, v); err != nil {
			return err
		}
		if err := add(name, []int64{int64(q), int64(d)}, v); err != nil {
			return err
		}
	}
	if err := AddOptimState(w, t.opt); err != nil {
		return err
	}
	cfgJSON, err := json.Marshal(t.Config)
	if err != nil {
		return err
	}
	meta, err := json.MarshalIndent(stateJSON{State: t.State, Config: cfgJSON}, "", "  ")
	if err != nil {
		return err
	}
	return blip.WriteFolderAtomic(dir, true, func(tmp string) error {
		if err := w.WriteFile(filepath.Join(tmp, stateTensors)); err != nil {
			return err
		}
		return blip.WriteFileSync(filepath.Join(tmp, stateFile), append(meta, '\n'))
	})
}

// HasCheckpoint reports whether dir holds a checkpoint.
func HasCheckpoint(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, stateFile))
	return err == nil
}

// Resume builds a trainer from the checkpoint in dir: parameters,
// momentum copies, queues, optimiser state and State. cfg must describe
// the same model and batch (the checkpoint's shapes are checked tensor by
// tensor).
func Resume(dir string, cfg *Config, be gpu.Backend, dec, enc, pad int) (*Trainer, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("pretrain: resume: %w", err)
	}
	var sj stateJSON
	if err := json.Unmarshal(data, &sj); err != nil {
		return nil, fmt.Errorf("pretrain: resume: %s: %w", filepath.Join(dir, stateFile), err)
	}
	path := filepath.Join(dir, stateTensors)
	ck, err := blip.OpenCheckpoint(path)
	if err != nil {
		return nil, fmt.Errorf("pretrain: resume: %w", err)
	}
	defer ck.Close()
	t, err := NewTrainer(cfg, be, ck, sj.State.EpochSteps, dec, enc, pad)
	if err != nil {
		return nil, fmt.Errorf("pretrain: resume from %s: %w", dir, err)
	}
	fail := func(err error) (*Trainer, error) {
		t.Close()
		return nil, fmt.Errorf("pretrain: resume from %s: %w", path, err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	for name, x := range map[string]*graph.Tensor{"queue.image": t.in.ImageQueue, "queue.text": t.in.TextQueue} {
		v, err := f.Float32(name)
		if err != nil {
			return fail(err)
		}
		if err := t.plan.WriteF32(x, v); err != nil {
			return fail(fmt.Errorf("%s: %w (queue_size or the projection width changed?)", name, err))
		}
	}
	if err := LoadOptimState(f, t.opt); err != nil {
		return fail(err)
	}
	if sj.State.QueuePtr < 0 || sj.State.QueuePtr >= cfg.QueueSize {
		return fail(fmt.Errorf("queue_ptr %d outside the queue of %d", sj.State.QueuePtr, cfg.QueueSize))
	}
	t.State = sj.State
	return t, nil
}

func shape64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}
