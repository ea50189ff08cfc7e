package main

import (
	"encoding/json"
	"strings"
	"testing"

	"blip/blip/benchmodel"
)

// bench model at tiny size on the CPU backend, reference off: every
// workload is there with positive figures, captions have the forced length.
func TestBenchModelCLI(t *testing.T) {
	out, err := run(t, "--backend", "cpu", "bench", "model", "--size", "tiny", "--quick", "--json", "--torch", "")
	if err != nil {
		t.Fatal(err)
	}
	var rep benchmodel.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Torch != nil || rep.TorchError != "" {
		t.Errorf("reference ran or complained with --torch \"\": %+v %q", rep.Torch, rep.TorchError)
	}
	seen := map[string]bool{}
	for _, r := range rep.Rows {
		seen[r.Name] = true
		if r.Blip.Error != "" || !(r.Blip.Seconds > 0) || !(r.Blip.PerSecond > 0) || r.Work == "" {
			t.Errorf("%s: %+v", r.Name, r)
		}
		if r.Kind == "generate" && r.Blip.NewTokens != 20 {
			t.Errorf("%s: %d new tokens, want 20", r.Name, r.Blip.NewTokens)
		}
	}
	for _, n := range benchmodel.Names {
		if !seen[n] {
			t.Errorf("workload %s missing from %s", n, out)
		}
	}
}

// A reference that cannot run is one line in the report; blip's figures
// are still there.
func TestBenchModelNoPython(t *testing.T) {
	out, err := run(t, "--backend", "cpu", "bench", "model", "--size", "tiny", "--quick", "--json",
		"--only", "vit", "--batch", "2", "--torch", "/nonexistent/python3")
	if err != nil {
		t.Fatal(err)
	}
	var rep benchmodel.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.TorchError == "" || strings.Contains(rep.TorchError, "\n") {
		t.Errorf("torch error %q, want one line", rep.TorchError)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Batch != 2 || !(rep.Rows[0].Blip.PerSecond > 0) {
		t.Errorf("rows %+v", rep.Rows)
	}
}
