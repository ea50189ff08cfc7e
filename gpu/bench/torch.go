package bench

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

//go:embed torch_kernels.py
var torchScript []byte

// TorchResult is the PyTorch reference run: seconds per call by case name
// (absent or nil where PyTorch failed).
type TorchResult struct {
	Version string              `json:"torch"`
	Threads int                 `json:"threads"`
	Device  string              `json:"device"`
	Cases   map[string]*float64 `json:"cases"`
}

// RunTorch times the cases with PyTorch through python (e.g. "python3"), on
// device "cpu" or "cuda", in a child process of this run.
func RunTorch(python, device string, cases []Case, minTime time.Duration) (*TorchResult, error) {
	dir, err := os.MkdirTemp("", "blip-torch")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "torch_kernels.py")
	if err := os.WriteFile(script, torchScript, 0o644); err != nil {
		return nil, err
	}
	type spec struct {
		Name  string         `json:"name"`
		Torch map[string]any `json:"torch"`
	}
	var in []spec
	for _, c := range cases {
		if c.Torch != nil {
			in = append(in, spec{c.Name, c.Torch})
		}
	}
	js, _ := json.Marshal(in)
	cmd := exec.Command(python, script, "--device", device, "--min-time", fmt.Sprint(minTime.Seconds()))
	cmd.Stdin = bytes.NewReader(js)
	cmd.Env = TorchEnv()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s torch_kernels.py: %w (is PyTorch installed for it?)", python, err)
	}
	var r TorchResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("torch_kernels.py output: %w", err)
	}
	return &r, nil
}

// TorchEnv is the environment for a PyTorch reference run: this process's,
// without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, which pin some machines to a
// slow OpenBLAS kernel; the reference should run at its real speed.
func TorchEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPENBLAS_CORETYPE=") && !strings.HasPrefix(kv, "OPENBLAS_L2_SIZE=") {
			env = append(env, kv)
		}
	}
	return env
}
