package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// blip capfilt end to end on the tiny models: an interrupted run resumes to
// the output of an uninterrupted one, shards merge to the same pairs, and
// wrong-kind folders are refused.
func TestCapfiltCLI(t *testing.T) {
	tiny := filepath.Join("testdata", "hf-blip-tiny")
	capDir, filDir := filepath.Join(tiny, "tiny-captioning"), filepath.Join(tiny, "tiny-retrieval")
	dir := t.TempDir()
	web := filepath.Join(dir, "web.json")
	data, _ := json.Marshal([]map[string]any{
		{"image": "astronaut.png", "caption": "an astronaut with a flag"},
		{"image": "chelsea.png", "caption": []string{"a cat", "a bus"}},
		{"image": "coffee.png", "caption": "a cup of coffee"},
		{"image": "rocket.jpg", "caption": "a rocket"},
	})
	if err := os.WriteFile(web, data, 0o644); err != nil {
		t.Fatal(err)
	}
	human := filepath.Join(dir, "human.json")
	if err := os.WriteFile(human, []byte(`[{"image": "coffee.png", "caption": "coffee"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := func(out string, extra ...string) []string {
		return append([]string{"--backend", "cpu", "capfilt", "--captioner", capDir, "--filter", filDir, "--data", web,
			"--image-root", filepath.Join(tiny, "images"), "--human", human, "--out", out,
			"--samples-per-image", "2", "--threshold", "0.2", "--batch", "1", "--seed", "3"}, extra...)
	}
	full := filepath.Join(dir, "full", "out.json")
	stdout, err := run(t, base(full)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "synthetic kept") {
		t.Errorf("no summary on stdout: %q", stdout)
	}
	part := filepath.Join(dir, "part", "out.json")
	if _, err := run(t, base(part, "--max-batches", "1")...); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Fatalf("output written after one batch: %v", err)
	}
	if _, err := run(t, base(part)...); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(full)
	b, _ := os.ReadFile(part)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("resumed output differs:\n%s\n%s", a, b)
	}
	var shards []string
	for _, s := range []string{"0/2", "1/2"} {
		out := filepath.Join(dir, "shard"+s[:1]+".json")
		if _, err := run(t, base(out, "--shard", s)...); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, out)
	}
	merged := filepath.Join(dir, "merged.json")
	if _, err := run(t, append([]string{"capfilt", "merge", "--out", merged}, shards...)...); err != nil {
		t.Fatal(err)
	}
	var x, y []map[string]any
	m, _ := os.ReadFile(merged)
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(m, &y); err != nil {
		t.Fatal(err)
	}
	key := func(e map[string]any) string {
		return e["image"].(string) + "|" + e["source"].(string) + "|" + e["caption"].(string)
	}
	set := map[string]int{}
	for _, e := range x {
		set[key(e)]++
	}
	for _, e := range y {
		set[key(e)]--
	}
	for k, n := range set {
		if n != 0 {
			t.Errorf("pair %q: unsharded minus merged count %d", k, n)
		}
	}
	if len(x) != len(y) {
		t.Errorf("unsharded %d pairs, merged %d", len(x), len(y))
	}
	_, err = run(t, "--backend", "cpu", "capfilt", "--captioner", filDir, "--filter", filDir, "--data", web, "--out", filepath.Join(dir, "x.json"))
	if err == nil || !strings.Contains(err.Error(), "BlipForImageTextRetrieval") {
		t.Errorf("retrieval model as captioner: %v", err)
	}
	_, err = run(t, "--backend", "cpu", "capfilt", "--captioner", capDir, "--filter", filDir, "--out", filepath.Join(dir, "x.json"))
	if err == nil || !strings.Contains(err.Error(), "--data") {
		t.Errorf("no --data: %v", err)
	}
}
