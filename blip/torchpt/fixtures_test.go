package torchpt

import (
	"bytes"
	"path/filepath"
	"testing"

	"blip/data/safetensors"
)

// tinyDir is the folder of the HF tiny reference models.
var tinyDir = filepath.Join("..", "..", "testdata", "hf-blip-tiny")

// TestHFBinMatchesSafetensors loads the torch.save copy of the tiny
// captioning model and compares every tensor with the safetensors file.
func TestHFBinMatchesSafetensors(t *testing.T) {
	a, err := Open(filepath.Join(tinyDir, "tiny-captioning-bin", "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Format() != "zip" {
		t.Errorf("format %q, want zip", a.Format())
	}
	sd, err := a.FindStateDict()
	if err != nil {
		t.Fatal(err)
	}
	if sd.Where() != "" {
		t.Errorf("state dict found at %s, want the root", sd.Where())
	}
	st, err := safetensors.Open(filepath.Join(tinyDir, "tiny-captioning", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const tied = "text_decoder.cls.predictions.decoder.weight"
	const emb = "text_decoder.bert.embeddings.word_embeddings.weight"
	names := sd.Names()
	if len(names) != st.Len()+1 {
		t.Errorf("%d tensors in the .bin, want %d (+1 tied)", len(names), st.Len())
	}
	for _, n := range names {
		ref := n
		if n == tied {
			ref = emb
		}
		want, err := st.Raw(ref)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		got, err := sd.Raw(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: bytes differ from the safetensors file", n)
		}
		info, _ := sd.Info(n)
		sinfo, _ := st.Info(ref)
		if !equalInts(info.Shape, sinfo.Shape) || info.DType != sinfo.DType {
			t.Errorf("%s: %s%v, want %s%v", n, info.DType, info.Shape, sinfo.DType, sinfo.Shape)
		}
	}
	if !sd.SameData(tied, emb) {
		t.Errorf("%s and %s should share their storage", tied, emb)
	}
	f, err := sd.Float32(emb)
	if err != nil || len(f) != 137*64 {
		t.Errorf("Float32: %d values, %v", len(f), err)
	}
}

// TestOriginalNested finds the {"model": state_dict} of an original BLIP
// checkpoint.
func TestOriginalNested(t *testing.T) {
	a, err := Open(filepath.Join(tinyDir, "tiny-captioning-original", "model_tiny_caption.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if k := a.Keys(); len(k) != 1 || k[0] != "model" {
		t.Errorf("top-level keys %v, want [model]", k)
	}
	sd, err := a.FindStateDict()
	if err != nil {
		t.Fatal(err)
	}
	if sd.Where() != `["model"]` {
		t.Errorf("found at %q", sd.Where())
	}
	if _, ok := sd.Info("visual_encoder.blocks.0.attn.qkv.weight"); !ok {
		t.Errorf("qkv missing; names: %v", sd.Names())
	}
	if _, err := a.StateDict("nope"); err == nil {
		t.Error("StateDict(nope) succeeded")
	}
}
