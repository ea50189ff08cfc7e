package finetune

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"blip/blip"
	"blip/blip/pretrain"
	"blip/data/safetensors"
	"blip/graph"
)

// A checkpoint is a folder holding state.safetensors (every parameter by
// its HF name, and the AdamW state under "optim.", with the loss scaler's
// in fp16 runs (pretrain.AddOptimState); for retrieval also the
// momentum copies ("vision_model_m...."), the feature queues
// "queue.image" and "queue.text" and the image-id queue "queue.idx") and
// state.json (State and the config), written to a temporary sibling and
// renamed into place.
const (
	stateTensors = "state.safetensors"
	stateFile    = "state.json"
	queueIdx     = "queue.idx"
)

// saved lists the parameter sets a checkpoint holds.
func (t *Trainer) saved() []*graph.Params {
	if t.Retrieval != nil {
		return []*graph.Params{t.params, t.Retrieval.Momentum}
	}
	return []*graph.Params{t.params}
}

// queues names the retrieval feature queues.
func (t *Trainer) queues() map[string]*graph.Tensor {
	if t.ret == nil {
		return nil
	}
	return map[string]*graph.Tensor{"queue.image": t.ret.in.ImageQueue, "queue.text": t.ret.in.TextQueue}
}

type stateJSON struct {
	State  State           `json:"state"`
	Config json.RawMessage `json:"config"`
}

// CheckpointDir is where a run keeps its checkpoint.
func CheckpointDir(out string) string { return filepath.Join(out, "checkpoint") }

// HasCheckpoint reports whether dir holds a checkpoint.
func HasCheckpoint(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, stateFile))
	return err == nil
}

// Save writes the trainer's checkpoint to dir atomically.
func (t *Trainer) Save(dir string) error {
	w := safetensors.NewWriter()
	for _, ps := range t.saved() {
		for _, p := range ps.List() {
			v := make([]float32, p.Numel())
			if err := p.Read(v); err != nil {
				return err
			}
			shape := make([]int64, 0, 4)
			for _, d := range p.Shape() {
				shape = append(shape, int64(d))
			}
			if err := w.AddFloat32(p.Name(), shape, v); err != nil {
				return err
			}
		}
	}
	if t.ret != nil {
		q, d := t.Config.QueueSize, t.Retrieval.Config.ImageTextHiddenSize
		for name, x := range t.queues() {
			v := make([]float32, q*d)
			if err := t.plan.ReadF32(x, v); err != nil {
				return err
			}
			if err := w.AddFloat32(name, []int64{int64(q), int64(d)}, v); err != nil {
				return err
			}
		}
		if err := w.AddInt64(queueIdx, []int64{int64(q)}, t.ret.idxQueue); err != nil {
			return err
		}
	}
	if err := pretrain.AddOptimState(w, t.opt); err != nil {
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

// restore loads the checkpoint in dir into t: parameters, AdamW state and
// State (and for retrieval the momentum copies and the queues). The model must be the one the checkpoint was written from (each
// tensor's shape is checked).
func (t *Trainer) restore(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return fmt.Errorf("finetune: resume: %w", err)
	}
	var sj stateJSON
	if err := json.Unmarshal(data, &sj); err != nil {
		return fmt.Errorf("finetune: resume: %s: %w", filepath.Join(dir, stateFile), err)
	}
	path := filepath.Join(dir, stateTensors)
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("finetune: resume: %w", err)
	}
	defer f.Close()
	fail := func(err error) error { return fmt.Errorf("finetune: resume from %s: %w", path, err) }
	for _, ps := range t.saved() {
		for _, p := range ps.List() {
			v, err := f.Float32(p.Name())
			if err != nil {
				return fail(err)
			}
			if len(v) != p.Numel() {
				return fail(fmt.Errorf("%s has %d values, the model's %d", p.Name(), len(v), p.Numel()))
			}
			if err := p.Write(v); err != nil {
				return fail(err)
			}
		}
	}
	if t.ret != nil {
		for name, x := range t.queues() {
			v, err := f.Float32(name)
			if err != nil {
				return fail(err)
			}
			if err := t.plan.WriteF32(x, v); err != nil {
				return fail(fmt.Errorf("%s: %w (queue_size changed?)", name, err))
			}
		}
		v, err := f.Int64(queueIdx)
		if err != nil {
			return fail(err)
		}
		if len(v) != len(t.ret.idxQueue) {
			return fail(fmt.Errorf("%s has %d ids, queue_size is %d", queueIdx, len(v), len(t.ret.idxQueue)))
		}
		if sj.State.QueuePtr < 0 || sj.State.QueuePtr >= len(v) {
			return fail(fmt.Errorf("queue pointer %d outside the queue of %d", sj.State.QueuePtr, len(v)))
		}
		copy(t.ret.idxQueue, v)
	}
	if err := pretrain.LoadOptimState(f, t.opt); err != nil {
		return fail(err)
	}
	if sj.State.EpochSteps != t.State.EpochSteps {
		return fmt.Errorf("finetune: the checkpoint's epochs have %d steps, the data now gives %d: resume with the same data and batch size", sj.State.EpochSteps, t.State.EpochSteps)
	}
	t.State = sj.State
	return nil
}

// metricsWriter appends one JSON line per step.
type metricsWriter struct {
	f *os.File
}

// openMetrics opens path for appending after dropping the lines of steps
// after keepThrough (on resume those steps run again).
func openMetrics(path string, keepThrough int64) (*metricsWriter, error) {
	var kept []byte
	if data, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var m Metrics
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Step <= keepThrough {
				kept = append(append(kept, sc.Bytes()...), '\n')
			}
		}
	}
	if err := os.WriteFile(path, kept, 0o644); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &metricsWriter{f: f}, nil
}

func (m *metricsWriter) write(x Metrics) error {
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	_, err = m.f.Write(append(b, '\n'))
	return err
}

func (m *metricsWriter) close() error { return m.f.Close() }
