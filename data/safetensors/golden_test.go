package safetensors

import (
	"math"
	"path/filepath"
	"testing"
)

// goldenDir holds the HF reference data (see its README.md).
var goldenDir = filepath.Join("..", "..", "testdata", "hf-blip-tiny")

func TestGoldenFile(t *testing.T) {
	f, err := Open(filepath.Join(goldenDir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Len() != 103 {
		t.Errorf("got %d tensors, want 103", f.Len())
	}
	if got := f.Metadata()["producer"]; got == "" {
		t.Errorf("missing producer metadata: %v", f.Metadata())
	}
	info, ok := f.Info("pixel_values")
	if !ok || info.DType != F32 || len(info.Shape) != 4 || info.Shape[0] != 4 || info.Shape[1] != 3 || info.Shape[2] != 64 || info.Shape[3] != 64 {
		t.Fatalf("pixel_values info = %+v, %v", info, ok)
	}
	px, err := f.Float32("pixel_values")
	if err != nil {
		t.Fatal(err)
	}
	if len(px) != 4*3*64*64 {
		t.Fatalf("len %d", len(px))
	}
	// Reference values read with Python's struct module.
	for i, want := range []float32{1.0106353759765625, -0.9017584919929504, -1.748467206954956, -1.4127033948898315, -0.7411757707595825} {
		if px[i] != want {
			t.Errorf("pixel_values[%d] = %v, want %v", i, px[i], want)
		}
	}
	var sum float64
	for _, v := range px {
		sum += float64(v)
	}
	if math.Abs(sum-(-11548.753950327518)) > 1e-6 {
		t.Errorf("sum %v", sum)
	}
	ids, err := f.Int64("cap.input_ids")
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{135, 11, 80, 67, 11, 95, 103, 104, 3}
	for i, w := range want {
		if ids[i] != w {
			t.Fatalf("cap.input_ids[0] = %v, want %v", ids[:9], want)
		}
	}
	ids32, err := f.Int32("itm.input_ids")
	if err != nil || ids32[0] != 2 || len(ids32) != 36 {
		t.Errorf("itm.input_ids as int32: %v %v", ids32, err)
	}
	if _, err := f.Float32("cap.input_ids"); err == nil {
		t.Error("Float32 of an I64 tensor should fail")
	}
	if _, err := f.Int64("pixel_values"); err == nil {
		t.Error("Int64 of an F32 tensor should fail")
	}
	if _, err := f.Float32("no.such.tensor"); err == nil {
		t.Error("missing tensor should fail")
	}
	// Every tensor reads.
	for _, n := range f.Names() {
		if _, err := f.Raw(n); err != nil {
			t.Error(err)
		}
	}
}

func TestGoldenModel(t *testing.T) {
	s, err := OpenSet(filepath.Join(goldenDir, "tiny-captioning"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.Names()); n != 91 {
		t.Errorf("got %d tensors, want 91", n)
	}
	if s.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v", s.Metadata())
	}
	if _, ok := s.Info("text_decoder.cls.predictions.decoder.weight"); ok {
		t.Error("the tied decoder weight should be absent from the file")
	}
	w, err := s.Float32("text_decoder.bert.embeddings.word_embeddings.weight")
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 137*64 || w[0] != -0.38648757338523865 || w[4] != 0.04612936079502106 {
		t.Errorf("word embeddings: len %d, first %v", len(w), w[:5])
	}
	var sum float64
	for _, v := range w {
		sum += float64(v)
	}
	if math.Abs(sum-4.361337727350474) > 1e-9 {
		t.Errorf("sum %v", sum)
	}
	info, _ := s.Info("vision_model.embeddings.class_embedding")
	if len(info.Shape) != 3 || info.Shape[2] != 64 || info.NumElements() != 64 || info.ByteSize() != 256 {
		t.Errorf("class_embedding info %+v", info)
	}
}
