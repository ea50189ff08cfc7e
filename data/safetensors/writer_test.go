package safetensors

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rt.safetensors")
	f32 := []float32{0, 1, -1, float32(math.Inf(1)), float32(math.Copysign(0, -1)), math.MaxFloat32, math.SmallestNonzeroFloat32}
	nanBits := math.Float32frombits(0x7fc00123)
	f32 = append(f32, nanBits)
	i32 := []int32{math.MinInt32, -1, 0, 1, math.MaxInt32, 5}
	i64 := []int64{math.MinInt64, math.MaxInt64, 3}
	w := NewWriter()
	w.SetMetadata("format", "pt")
	w.SetMetadata("note", "ünïcode \"quoted\"")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.AddFloat32("a.f32", []int64{2, 4}, f32))
	must(w.AddInt32("b.i32", []int64{3, 2}, i32))
	must(w.AddInt64("c.i64", []int64{3}, i64))
	must(w.AddFloat32("empty", []int64{0, 5}, nil))
	must(w.AddFloat32("scalar", nil, []float32{42}))
	must(w.WriteFile(p))

	// Overwrite works and leaves no temporary files behind.
	must(w.WriteFile(p))
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}
	raw, _ := os.ReadFile(p)
	hlen := int(raw[0]) | int(raw[1])<<8
	if (8+hlen)%8 != 0 {
		t.Errorf("data not 8-aligned: header %d", hlen)
	}

	f, err := Open(p)
	must(err)
	defer f.Close()
	md := f.Metadata()
	if md["format"] != "pt" || md["note"] != "ünïcode \"quoted\"" {
		t.Errorf("metadata %v", md)
	}
	if got := f.Names(); strings.Join(got, ",") != "a.f32,b.i32,c.i64,empty,scalar" {
		t.Errorf("names %v", got)
	}
	gf, err := f.Float32("a.f32")
	must(err)
	for i := range f32 {
		if math.Float32bits(gf[i]) != math.Float32bits(f32[i]) {
			t.Errorf("f32[%d] = %v, want %v", i, gf[i], f32[i])
		}
	}
	gi, err := f.Int32("b.i32")
	must(err)
	for i := range i32 {
		if gi[i] != i32[i] {
			t.Errorf("i32[%d] = %v", i, gi[i])
		}
	}
	gl, err := f.Int64("c.i64")
	must(err)
	for i := range i64 {
		if gl[i] != i64[i] {
			t.Errorf("i64[%d] = %v", i, gl[i])
		}
	}
	info, _ := f.Info("b.i32")
	if info.DType != I32 || len(info.Shape) != 2 || info.Shape[0] != 3 || info.Shape[1] != 2 {
		t.Errorf("info %+v", info)
	}
	e, err := f.Float32("empty")
	if err != nil || len(e) != 0 {
		t.Errorf("empty: %v %v", e, err)
	}
	s, err := f.Float32("scalar")
	if err != nil || len(s) != 1 || s[0] != 42 {
		t.Errorf("scalar: %v %v", s, err)
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	if err := w.AddFloat32("x", []int64{2, 2}, make([]float32, 3)); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("shape mismatch: %v", err)
	}
	if err := w.AddFloat32("y", []int64{1}, []float32{1}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddInt64("y", []int64{1}, []int64{1}); err == nil {
		t.Error("duplicate name accepted")
	}
	if err := w.AddInt32("__metadata__", []int64{1}, []int32{1}); err == nil {
		t.Error("reserved name accepted")
	}
	if err := w.AddInt32("neg", []int64{-1}, nil); err == nil {
		t.Error("negative dim accepted")
	}
	p := filepath.Join(t.TempDir(), "missing-dir", "x.safetensors")
	if err := w.WriteFile(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("write into a missing directory: %v", err)
	}
}

func TestLargeWrite(t *testing.T) {
	// Several flushes of the internal buffer.
	n := 700_000
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i) * 0.5
	}
	w := NewWriter()
	if err := w.AddFloat32("v", []int64{int64(n)}, v); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "l.safetensors")
	if err := w.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Float32("v")
	if err != nil {
		t.Fatal(err)
	}
	for i := range v {
		if got[i] != v[i] {
			t.Fatalf("v[%d] = %v", i, got[i])
		}
	}
}
