package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"blip/gpu"
	"blip/gpu/bench"
)

func benchCmd() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "benchmarks",
		Subcommands: []*cli.Command{{
			Name:  "kernels",
			Usage: "GFLOP/s and GB/s per kernel and shape on the chosen device, next to the CPU reference and PyTorch in the same run",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "json", Usage: "JSON output"},
				&cli.BoolFlag{Name: "quick", Usage: "skip the large shapes"},
				&cli.BoolFlag{Name: "no-cpu", Usage: "do not run the Go CPU reference"},
				&cli.StringFlag{Name: "torch", Value: "auto", Usage: "python interpreter with PyTorch for the reference run; \"auto\" finds one, \"\" skips"},
				&cli.StringFlag{Name: "torch-device", Value: "auto", Usage: "cpu or cuda (auto: cuda if the blip device is a discrete GPU)"},
				&cli.StringFlag{Name: "filter", Usage: "only cases whose name contains this"},
				&cli.StringSliceFlag{Name: "gemm", Usage: "instead of the built-in cases, GEMM shapes MxNxK[:ab] (a, b: 1 for transposed A, B); repeatable (tile overrides: BLIP_GEMM_TILE, BLIP_GEMM_CPU_TILE)"},
				&cli.StringSliceFlag{Name: "attention", Usage: "instead of the built-in cases, attention shapes BxHxTxD[:f16|:f32][:bwd] (f16: half-precision products, SDPA on half tensors for PyTorch; bwd: forward and backward); repeatable, with --gemm"},
				&cli.DurationFlag{Name: "min-time", Value: 500 * time.Millisecond, Usage: "minimum timed duration per case"},
			},
			Action: benchKernels,
		}, benchCaptionCmd(), benchPretrainCmd(), benchModelCmd()},
	}
}

type benchRow struct {
	Case       string          `json:"case"`
	Device     *bench.Result   `json:"device"`
	CPU        *bench.Result   `json:"cpu,omitempty"`
	TorchSec   *float64        `json:"torch_seconds_per_call,omitempty"`
	TorchGF    float64         `json:"torch_gflops,omitempty"`
	RatioTorch float64         `json:"device_vs_torch,omitempty"`
	RatioCPU   float64         `json:"cpu_vs_torch,omitempty"`
	Info       json.RawMessage `json:"-"`
}

// torchDevice is --torch-device, with auto resolved: cuda when blip runs on
// a GPU, else cpu.
func torchDevice(c *cli.Context, onGPU bool) string {
	dev := c.String("torch-device")
	if dev == "auto" {
		dev = "cpu"
		if onGPU {
			dev = "cuda"
		}
	}
	return dev
}

func findTorchPython() string {
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import torch").Run() == nil {
			return path
		}
	}
	return ""
}

func benchKernels(c *cli.Context) error {
	b, err := openBackend(c)
	if err != nil {
		return err
	}
	defer b.Close()
	info := b.Info()
	var cpu gpu.Backend
	if !c.Bool("no-cpu") && info.Backend != "cpu" {
		if cpu, err = gpu.Open(gpu.Options{Backend: "cpu"}); err != nil {
			return err
		}
		defer cpu.Close()
	}
	onGPU := info.Backend == "vulkan" && (info.Type == gpu.Discrete || info.Type == gpu.Integrated)
	all := bench.Cases()
	if gs, as := c.StringSlice("gemm"), c.StringSlice("attention"); len(gs)+len(as) > 0 {
		all = nil
		for _, s := range gs {
			k, err := bench.ParseGemm(s)
			if err != nil {
				return err
			}
			all = append(all, k)
		}
		for _, s := range as {
			k, err := bench.ParseAttention(s)
			if err != nil {
				return err
			}
			all = append(all, k)
		}
	}
	var cases []bench.Case
	for _, k := range all {
		if c.Bool("quick") && k.Big || k.GPUOnly && !onGPU {
			continue
		}
		if f := c.String("filter"); f != "" && !strings.Contains(k.Name, f) {
			continue
		}
		cases = append(cases, k)
	}
	minTime := c.Duration("min-time")

	var torch *bench.TorchResult
	py := c.String("torch")
	if py == "auto" {
		py = findTorchPython()
	}
	if py != "" {
		dev := torchDevice(c, onGPU)
		torch, err = bench.RunTorch(py, dev, cases, minTime)
		if err != nil {
			fmt.Fprintln(os.Stderr, "blip: PyTorch reference skipped:", err)
		}
	}

	var rows []benchRow
	for _, k := range cases {
		r := bench.Run(b, k, minTime)
		row := benchRow{Case: k.Name, Device: &r}
		if cpu != nil && !k.GPUOnly {
			cr := bench.Run(cpu, k, minTime)
			row.CPU = &cr
		}
		if torch != nil {
			if s := torch.Cases[k.Name]; s != nil && *s > 0 {
				row.TorchSec = s
				row.TorchGF = k.Flops / *s / 1e9
				if r.Err == "" {
					row.RatioTorch = *s / r.Seconds
				}
				if row.CPU != nil && row.CPU.Err == "" {
					row.RatioCPU = *s / row.CPU.Seconds
				}
			}
		}
		rows = append(rows, row)
		if !c.Bool("json") {
			fmt.Fprintf(os.Stderr, "  %s done\n", k.Name)
		}
	}
	if c.Bool("json") {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"device": info, "torch": torch, "results": rows})
	}
	fmt.Printf("device: %s (%s, %s)\n", info.Name, info.Backend, info.Type)
	if torch != nil {
		fmt.Printf("reference: PyTorch %s on %s, %d threads, same run\n", torch.Version, torch.Device, torch.Threads)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "case\tms\tGFLOP/s\tGB/s\tcpu ms\tcpu GFLOP/s\ttorch ms\ttorch GFLOP/s\tdevice/torch\tcpu/torch\t")
	for _, r := range rows {
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t", r.Case, ms(r.Device), gf(r.Device.GFlops, r.Device), gf(r.Device.GBs, r.Device))
		if r.CPU != nil {
			line += fmt.Sprintf("%s\t%s\t", ms(r.CPU), gf(r.CPU.GFlops, r.CPU))
		} else {
			line += "-\t-\t"
		}
		if r.TorchSec != nil {
			line += fmt.Sprintf("%.3f\t%.1f\t%s\t%s\t", *r.TorchSec*1e3, r.TorchGF, ratio(r.RatioTorch), ratio(r.RatioCPU))
		} else {
			line += "-\t-\t-\t-\t"
		}
		fmt.Fprintln(w, line)
	}
	w.Flush()
	for _, r := range rows {
		if r.Device.Err != "" {
			fmt.Fprintf(os.Stderr, "blip: %s on %s: %s\n", r.Case, r.Device.Backend, r.Device.Err)
		}
		if r.CPU != nil && r.CPU.Err != "" {
			fmt.Fprintf(os.Stderr, "blip: %s on cpu: %s\n", r.Case, r.CPU.Err)
		}
	}
	return nil
}

func ms(r *bench.Result) string {
	if r.Err != "" {
		return "error"
	}
	return fmt.Sprintf("%.3f", r.Seconds*1e3)
}

func gf(v float64, r *bench.Result) string {
	if r.Err != "" {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func ratio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v)
}
