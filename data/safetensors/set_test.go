package safetensors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeShards writes a two-shard checkpoint and its index into dir.
func writeShards(t *testing.T, dir, index string) {
	t.Helper()
	w1 := NewWriter()
	w1.AddFloat32("a.weight", []int64{2}, []float32{1, 2})
	w1.AddInt64("a.ids", []int64{1}, []int64{9})
	if err := w1.WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors")); err != nil {
		t.Fatal(err)
	}
	w2 := NewWriter()
	w2.AddFloat32("b.weight", []int64{1, 3}, []float32{3, 4, 5})
	w2.AddFloat32("b.extra", []int64{1}, []float32{0})
	if err := w2.WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, IndexName), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestShardedSet(t *testing.T) {
	dir := t.TempDir()
	writeShards(t, dir, `{"metadata":{"total_size":32},"weight_map":{
		"a.weight":"model-00001-of-00002.safetensors",
		"a.ids":"model-00001-of-00002.safetensors",
		"b.weight":"model-00002-of-00002.safetensors"}}`)
	s, err := OpenSet(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := strings.Join(s.Names(), ","); got != "a.ids,a.weight,b.weight" {
		t.Errorf("names %s", got)
	}
	if len(s.Files()) != 2 {
		t.Errorf("%d files", len(s.Files()))
	}
	if s.Metadata()["total_size"] != "32" {
		t.Errorf("metadata %v", s.Metadata())
	}
	b, err := s.Float32("b.weight")
	if err != nil || len(b) != 3 || b[2] != 5 {
		t.Errorf("b.weight %v %v", b, err)
	}
	ids, err := s.Int64("a.ids")
	if err != nil || ids[0] != 9 {
		t.Errorf("a.ids %v %v", ids, err)
	}
	if _, err := s.Float32("b.extra"); err == nil {
		t.Error("tensor outside the weight map should not be exposed")
	}
	if f, ok := s.File("b.weight"); !ok || !strings.HasSuffix(f.Path(), "00002-of-00002.safetensors") {
		t.Errorf("File(b.weight) = %v", f)
	}
	// The index file itself opens the same set.
	s2, err := OpenSet(filepath.Join(dir, IndexName))
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

func TestShardedErrors(t *testing.T) {
	cases := []struct{ name, index, want string }{
		{"missing tensor", `{"weight_map":{"zzz":"model-00001-of-00002.safetensors"}}`, `"zzz"`},
		{"missing shard", `{"weight_map":{"a.weight":"nope.safetensors"}}`, "nope.safetensors"},
		{"escaping path", `{"weight_map":{"a.weight":"../x.safetensors"}}`, "relative"},
		{"bad json", `{"weight_map":`, "bad index JSON"},
		{"empty map", `{"weight_map":{}}`, "no weight_map"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeShards(t, dir, c.index)
			s, err := OpenSet(dir)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
		})
	}
	if _, err := OpenSet(t.TempDir()); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("empty dir: %v", err)
	}
}
