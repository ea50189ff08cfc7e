package benchmodel

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"blip/gpu"
)

// Report is a whole `blip bench model` run.
type Report struct {
	Size    string         `json:"size"`
	Device  gpu.DeviceInfo `json:"device"`
	Backend string         `json:"backend"`
	Reps    int            `json:"reps"`
	// Precision is blip's weight storage (--precision).
	Precision string `json:"precision"`
	// Replay says whether compiled plans ran from captured command
	// buffers (graph.Replaying; only a Vulkan device captures).
	Replay bool `json:"replay"`
	// Note says how the sizes differ from the anchors' (CPU defaults).
	Note       string    `json:"note,omitempty"`
	Torch      *TorchRun `json:"torch,omitempty"`
	TorchError string    `json:"torch_error,omitempty"`
	Rows       []Row     `json:"workloads"`
}

// Row is one workload's figures side by side.
type Row struct {
	Workload
	Work      string             `json:"work"`
	Unit      string             `json:"unit"`
	Blip      Timing             `json:"blip"`
	TorchImpl string             `json:"torch_impl,omitempty"`
	Torch     map[string]*Timing `json:"torch,omitempty"`
}

// Assemble pairs blip's timings with the reference's (nil when it did
// not run) and sets the ratios.
func Assemble(ws []Workload, models map[string]Model, blipT []Timing, torch *TorchRun) []Row {
	rows := make([]Row, len(ws))
	for i, w := range ws {
		r := Row{Workload: w, Work: Describe(w, models[w.Model]), Unit: Unit(w), Blip: blipT[i]}
		if torch != nil {
			if tw := torch.Workloads[w.Name]; tw != nil {
				r.TorchImpl, r.Torch = tw.Impl, tw.Variants
				for _, t := range tw.Variants {
					if t.Error == "" && t.Seconds > 0 && r.Blip.Error == "" && r.Blip.Seconds > 0 {
						t.Ratio = t.Seconds / r.Blip.Seconds
					}
				}
			}
		}
		rows[i] = r
	}
	return rows
}

// lowPrecision are the reduced-precision reference variants, shown in a
// second column group.
var lowPrecision = []string{"fp16", "bf16-autocast"}

// Print writes the table: per workload blip's seconds per call and
// throughput, then the reference's per variant with torch/blip (>1: blip
// faster).
func (r *Report) Print(w io.Writer) {
	d := r.Device
	fmt.Fprintf(w, "blip bench model, %s size, random weights: blip %s on %s (%s backend, %s), %d timed reps after a warm-up\n",
		r.Size, r.Precision, d.Name, r.Backend, d.Type, r.Reps)
	if r.Backend != "cpu" {
		tensor := d.CoopGemm
		if tensor == "" {
			tensor = "none"
		}
		fmt.Fprintf(w, "tensor-core GEMM for fp16 products: %s; plans replayed from captured command buffers: %v\n", tensor, r.Replay)
	}
	if r.Note != "" {
		fmt.Fprintln(w, r.Note)
	}
	switch {
	case r.Torch != nil:
		t := r.Torch
		impl := "plain torch modules (transformers not importable or not asked for)"
		if t.Impl == "hf" {
			impl = "transformers " + t.Transformers + " BlipForConditionalGeneration / BlipForImageTextRetrieval"
		}
		fmt.Fprintf(w, "reference: PyTorch %s on %s (%d threads), %s; pretrain: torch_pretrain.py's modules; same run\n",
			t.Torch, t.Device, t.Threads, impl)
	case r.TorchError != "":
		fmt.Fprintln(w, "reference: none:", r.TorchError)
	default:
		fmt.Fprintln(w, "reference: none (not asked for)")
	}
	low := false
	for _, row := range r.Rows {
		for _, v := range lowPrecision {
			low = low || row.Torch[v] != nil
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "workload\twork\tunit\tblip s\tblip /s\ttorch fp32 s\ttorch /s\ttorch/blip"
	if low {
		head += "\tfp16|bf16 s\t/s\ttorch/blip"
	}
	fmt.Fprintln(tw, head)
	for _, row := range r.Rows {
		cells := []string{row.Name, row.Work, row.Unit}
		cells = append(cells, timingCells(&row.Blip, false)...)
		cells = append(cells, timingCells(row.Torch["fp32"], true)...)
		if low {
			var t *Timing
			for _, v := range lowPrecision {
				if row.Torch[v] != nil {
					t = row.Torch[v]
				}
			}
			cells = append(cells, timingCells(t, true)...)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	r.printProfiles(w)
	var errs []string
	for _, row := range r.Rows {
		if row.Blip.Error != "" {
			errs = append(errs, fmt.Sprintf("blip %s: %s", row.Name, row.Blip.Error))
		}
		vs := make([]string, 0, len(row.Torch))
		for v := range row.Torch {
			vs = append(vs, v)
		}
		slices.Sort(vs)
		for _, v := range vs {
			if e := row.Torch[v].Error; e != "" {
				errs = append(errs, fmt.Sprintf("torch %s %s: %s", row.Name, v, e))
			}
		}
	}
	for _, e := range errs {
		fmt.Fprintln(w, "error:", e)
	}
}

// timingCells are seconds, throughput and (ratio) for a table row.
func timingCells(t *Timing, ratio bool) []string {
	n := 2
	if ratio {
		n = 3
	}
	out := make([]string, n)
	for i := range out {
		out[i] = "-"
	}
	if t == nil {
		return out
	}
	if t.Error != "" {
		out[0] = "error"
		return out
	}
	out[0], out[1] = fmt.Sprintf("%.4f", t.Seconds), fmt.Sprintf("%.2f", t.PerSecond)
	if ratio && t.Ratio > 0 {
		out[2] = fmt.Sprintf("%.2fx", t.Ratio)
	}
	return out
}

// printProfiles writes, per workload profiled, the device busy time of one
// call against its timed wall clock and the kernels that take the most.
func (r *Report) printProfiles(w io.Writer) {
	const top = 8
	for _, row := range r.Rows {
		p := row.Blip.Profile
		if p == nil {
			continue
		}
		if p.Error != "" {
			fmt.Fprintf(w, "profile %s: %s\n", row.Name, p.Error)
			continue
		}
		fmt.Fprintf(w, "profile %s: GPU busy %.2f ms per call of %.2f ms wall (dispatches timed one at a time):", row.Name, 1e3*p.GPUSeconds, 1e3*row.Blip.Seconds)
		for i, k := range p.Kernels {
			if i == top {
				fmt.Fprintf(w, " ... (%d more)", len(p.Kernels)-top)
				break
			}
			fmt.Fprintf(w, " %s %.2f ms (%d)", k.Name, 1e3*k.Seconds, k.Calls)
		}
		fmt.Fprintln(w)
	}
}
