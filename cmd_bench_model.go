package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"blip/blip"
	"blip/blip/benchmodel"
	"blip/gpu"
	"blip/graph"
)

func benchModelCmd() *cli.Command {
	return &cli.Command{
		Name: "model",
		Usage: "hf_anchor.py's model workloads (captions of 20 tokens at batch 1 greedy/beam 3 and batch 32, ViT forward, ITM over 128 pairs, " +
			"caption training step) and the pretraining step, random weights, by blip and by PyTorch in the same run, with PyTorch/blip ratios",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "size", Value: "tiny", Usage: "tiny, or base (ViT-B/16 + BERT-base: 384px inference, 224px training)"},
			&cli.StringFlag{Name: "only", Usage: "comma-separated workloads: " + strings.Join(benchmodel.Names, ",")},
			&cli.StringFlag{Name: "batch", Usage: "batch override: N for every batched workload, or name=N,... (default: the anchors' 32 and 128; base on a CPU device: smaller)"},
			&cli.BoolFlag{Name: "quick", Usage: "fewer timed repetitions"},
			&cli.BoolFlag{Name: "profile", Usage: "after timing, run each workload once more with GPU timestamps around every dispatch and print the device time per kernel (the limiter)"},
			&cli.IntFlag{Name: "reps", Usage: "timed repetitions after one warm-up (0: 5 on a GPU, 2 on a CPU, 1 for base there; --quick: 2 and 1)"},
			&cli.BoolFlag{Name: "json", Usage: "JSON output"},
			&cli.StringFlag{Name: "torch", Value: "auto", Usage: "python interpreter with PyTorch for the reference; \"auto\" finds one, \"\" skips"},
			&cli.StringFlag{Name: "torch-device", Value: "auto", Usage: "cpu or cuda (auto: cuda if the blip device is a GPU)"},
			&cli.StringFlag{Name: "torch-impl", Value: "auto", Usage: "auto (transformers if importable), hf or plain (torch modules, no transformers)"},
		},
		Action: benchModel,
	}
}

func benchModel(c *cli.Context) error {
	size := c.String("size")
	capJSON, ok1 := benchConfigs[size]
	preJSON, ok2 := benchPretrainConfigs[size]
	if !ok1 || !ok2 {
		return fmt.Errorf("bench model: --size %q: want tiny or base", size)
	}
	impl := c.String("torch-impl")
	if impl != "auto" && impl != "hf" && impl != "plain" {
		return fmt.Errorf("bench model: --torch-impl %q: want auto, hf or plain", impl)
	}
	if d := c.String("torch-device"); d != "auto" && d != "cpu" && d != "cuda" {
		return fmt.Errorf("bench model: --torch-device %q: want auto, cpu or cuda", d)
	}
	models, err := benchmodel.Models([]byte(capJSON), []byte(preJSON))
	if err != nil {
		return fmt.Errorf("bench model: %w", err)
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	info := be.Info()
	onGPU := info.Backend == "vulkan" && (info.Type == gpu.Discrete || info.Type == gpu.Integrated)

	ws, err := benchmodel.Select(benchmodel.Anchor(), c.String("only"), c.String("batch"))
	if err != nil {
		return fmt.Errorf("bench model: %w", err)
	}
	note := ""
	if !onGPU && size == "base" && c.String("batch") == "" {
		var parts []string
		for i := range ws {
			if n, ok := benchmodel.CPUBaseBatches[ws[i].Name]; ok {
				parts = append(parts, fmt.Sprintf("%s %d (anchor %d)", ws[i].Name, n, ws[i].Batch))
				ws[i].Batch = n
			}
		}
		if len(parts) > 0 {
			note = "CPU device: base batches reduced to " + strings.Join(parts, ", ") + "; --batch sets them"
		}
	}
	reps := c.Int("reps")
	if reps <= 0 {
		switch quick := c.Bool("quick"); {
		case onGPU && !quick:
			reps = 5 // hf_anchor.py's
		case onGPU || !quick && size == "tiny":
			reps = 2
		default:
			reps = 1
		}
	}
	var progress io.Writer = os.Stderr
	if c.Bool("json") {
		progress = nil // stderr stays for errors only
	}
	prec, err := blip.ParsePrecision(c.String("precision"))
	if err != nil {
		return fmt.Errorf("--precision: %w", err)
	}
	rep := &benchmodel.Report{Size: size, Device: info, Backend: be.Name(), Reps: reps, Note: note, Precision: c.String("precision")}
	_, capture := be.(gpu.Capturer)
	rep.Replay = capture && graph.Replaying()
	blipT := benchmodel.RunBlip(be, models, ws, reps, prec, c.Bool("profile"), progress)

	var torch *benchmodel.TorchRun
	py := c.String("torch")
	if py == "auto" {
		if py = findTorchPython(); py == "" {
			rep.TorchError = "no python3 that imports torch (tried /usr/bin/python3, python3; --torch PATH names one)"
		}
	}
	if py != "" {
		dev := torchDevice(c, onGPU)
		torch, err = benchmodel.RunTorch(benchmodel.TorchOptions{Python: py, Device: dev, Impl: impl, Reps: reps, Progress: progress}, models, ws)
		if err != nil {
			rep.TorchError = err.Error()
		}
	}
	if rep.TorchError != "" {
		fmt.Fprintln(os.Stderr, "blip: PyTorch reference skipped:", rep.TorchError)
	}
	rep.Rows = benchmodel.Assemble(ws, models, blipT, torch)
	if torch != nil {
		sum := *torch
		sum.Workloads = nil // the rows hold them
		rep.Torch = &sum
	}
	if c.Bool("json") {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	rep.Print(os.Stdout)
	return nil
}
