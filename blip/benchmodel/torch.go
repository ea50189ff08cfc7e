package benchmodel

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"blip/blip/pretrain"
	"blip/gpu/bench"
)

// TorchScript is torch_model.py, the PyTorch reference of the workloads.
// It imports torch_pretrain.py (pretrain.TorchScript) from its folder.
//
//go:embed torch_model.py
var TorchScript []byte

// TorchOptions choose how the reference runs.
type TorchOptions struct {
	Python string // interpreter with torch
	Device string // "cpu" or "cuda"
	// Impl is "auto" (transformers when importable, else plain torch
	// modules), "hf" or "plain".
	Impl string
	Reps int
	// Progress, when set, receives a line per finished workload.
	Progress io.Writer
}

// TorchRun is what the reference reports: its versions and, by workload
// name, its implementation and timings by variant ("fp32"; on CUDA also
// "fp16" for inference and "bf16-autocast" for training).
type TorchRun struct {
	Torch        string `json:"torch"`
	Transformers string `json:"transformers,omitempty"`
	// Impl is "hf" (transformers' BLIP classes) or "plain" (the torch
	// modules of torch_pretrain.py).
	Impl      string                    `json:"impl"`
	Device    string                    `json:"device"`
	Threads   int                       `json:"threads"`
	Workloads map[string]*TorchWorkload `json:"workloads,omitempty"`
}

// TorchWorkload is one workload's reference figures.
type TorchWorkload struct {
	Impl     string             `json:"impl"`
	Variants map[string]*Timing `json:"variants"`
}

// torchModel is a model as the script gets it: the config.json for
// transformers, the sizes for the plain modules (torch_pretrain.py's
// names).
type torchModel struct {
	Config json.RawMessage `json:"config"`
	Sizes  map[string]int  `json:"sizes"`
}

// sizes are torch_pretrain.py's size names for c, plus the decoder's
// special tokens.
func sizes(c Model) map[string]int {
	t, v := &c.Config.TextConfig, &c.Config.VisionConfig
	return map[string]int{
		"h": t.HiddenSize, "heads": t.NumAttentionHeads, "layers": t.NumHiddenLayers, "inter": t.IntermediateSize,
		"vocab": t.VocabSize, "maxpos": t.MaxPositionEmbeddings, "vw": v.HiddenSize, "vheads": v.NumAttentionHeads,
		"vlayers": v.NumHiddenLayers, "vinter": v.IntermediateSize, "patch": v.PatchSize, "size": v.ImageSize,
		"embed": c.Config.ImageTextHiddenSize, "bos": t.BosTokenID, "sep": t.SepTokenID, "pad": t.PadTokenID,
	}
}

// RunTorch runs torch_model.py on the workloads in a child process (the
// script and torch_pretrain.py written to a temporary folder) and returns
// its figures, the seconds turned into throughput. An error is one line:
// the script's last words when it fails.
func RunTorch(o TorchOptions, models map[string]Model, ws []Workload) (*TorchRun, error) {
	dir, err := os.MkdirTemp("", "blip-bench-model-torch-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "torch_model.py")
	if err := os.WriteFile(script, TorchScript, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "torch_pretrain.py"), pretrain.TorchScript, 0o644); err != nil {
		return nil, err
	}
	tm := map[string]torchModel{}
	for _, w := range ws {
		m := models[w.Model]
		tm[w.Model] = torchModel{m.JSON, sizes(m)}
	}
	spec, err := json.Marshal(map[string]any{"device": o.Device, "impl": o.Impl, "reps": o.Reps, "models": tm, "workloads": ws})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Python, script)
	cmd.Stdin = bytes.NewReader(spec)
	cmd.Env = bench.TorchEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &progressWriter{all: &stderr, progress: o.Progress}
	if err := cmd.Run(); err != nil {
		if last := lastLine(stderr.String()); last != "" {
			return nil, fmt.Errorf("%s: %s", o.Python, last)
		}
		return nil, fmt.Errorf("%s: %w", o.Python, err)
	}
	var r TorchRun
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("torch_model.py output %.200q: %w", stdout.String(), err)
	}
	for _, w := range ws {
		tw := r.Workloads[w.Name]
		if tw == nil {
			continue
		}
		for _, t := range tw.Variants {
			if t.Error == "" && t.Seconds > 0 {
				t.PerSecond = float64(w.Batch) / t.Seconds
			}
		}
	}
	return &r, nil
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// progressWriter keeps everything and passes the script's "torch ..."
// progress lines on.
type progressWriter struct {
	all      *bytes.Buffer
	progress io.Writer
	partial  []byte
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.all.Write(b)
	if p.progress == nil {
		return len(b), nil
	}
	p.partial = append(p.partial, b...)
	i := bytes.LastIndexByte(p.partial, '\n')
	if i < 0 {
		return len(b), nil
	}
	sc := bufio.NewScanner(bytes.NewReader(p.partial[:i+1]))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "torch ") {
			fmt.Fprintln(p.progress, sc.Text())
		}
	}
	p.partial = append(p.partial[:0], p.partial[i+1:]...)
	return len(b), nil
}
