package blip

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"blip/data/safetensors"
)

// copyDir copies the regular files of src into a new temporary folder.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// readAll reads every parameter of the folder's class with Require, as model
// construction does, and returns them by name.
func readAll(t *testing.T, f *Folder) map[string][]float32 {
	t.Helper()
	specs, err := ExpectedTensors(f.Config, f.Kind)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, s := range specs {
		v, err := f.Weights.Require(s.Name, s.Shape...)
		if err != nil {
			t.Fatal(err)
		}
		out[s.Name] = v
	}
	return out
}

func TestOpenFolderCaptioning(t *testing.T) {
	f, err := OpenFolder(filepath.Join(tinyDir, "tiny-captioning"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Kind != KindCaptioning || f.Weights.Format() != "safetensors" {
		t.Errorf("kind %v format %s", f.Kind, f.Weights.Format())
	}
	if f.VocabPath == "" {
		t.Error("vocab.txt not found")
	}
	w := f.Weights
	// The tied LM head reads the word embeddings.
	if !w.Has(DecoderWeightName) || !slices.Contains(w.Names(), DecoderWeightName) {
		t.Fatal("tied decoder weight not exposed")
	}
	if s, _ := w.Shape(DecoderWeightName); !equalShape(s, []int{137, 64}) {
		t.Errorf("decoder shape %v", s)
	}
	all := readAll(t, f)
	if !slices.Equal(all[DecoderWeightName], all[DecoderEmbedName]) {
		t.Error("decoder weight differs from the embeddings")
	}
	if u := w.Unused(); len(u) != 0 {
		t.Errorf("unused after reading every parameter: %v", u)
	}
	if dt, ok := w.DType(DecoderWeightName); !ok || dt != safetensors.F32 {
		t.Errorf("dtype %v", dt)
	}

	// Require: wrong shape names the key and both shapes; absence names the key.
	_, err = w.Require("vision_model.embeddings.position_embedding", 1, 577, 64)
	if err == nil || !strings.Contains(err.Error(), "vision_model.embeddings.position_embedding") ||
		!strings.Contains(err.Error(), "[1 17 64]") || !strings.Contains(err.Error(), "[1 577 64]") {
		t.Errorf("shape mismatch error: %v", err)
	}
	_, err = w.Require("text_encoder.embeddings.word_embeddings.weight", 137, 64)
	if err == nil || !strings.Contains(err.Error(), "missing tensor \"text_encoder.embeddings.word_embeddings.weight\"") {
		t.Errorf("missing tensor error: %v", err)
	}
	if _, err := w.Float32("nope"); err == nil {
		t.Error("Float32 of a missing tensor")
	}
}

// TestBinEqualsSafetensors loads the torch.save copy and checks every
// parameter is identical to the safetensors folder's.
func TestBinEqualsSafetensors(t *testing.T) {
	ref, err := OpenFolder(filepath.Join(tinyDir, "tiny-captioning"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	bin, err := OpenFolder(filepath.Join(tinyDir, "tiny-captioning-bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	if bin.Weights.Format() != "pytorch" || bin.Kind != KindCaptioning {
		t.Errorf("format %s kind %v", bin.Weights.Format(), bin.Kind)
	}
	want := readAll(t, ref)
	got := readAll(t, bin)
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("%s differs", name)
		}
	}
	if u := bin.Weights.Unused(); len(u) != 0 {
		t.Errorf("unused: %v", u)
	}
}

func TestOpenFolderRetrieval(t *testing.T) {
	f, err := OpenFolder(filepath.Join(tinyDir, "tiny-retrieval"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Kind != KindRetrieval {
		t.Errorf("kind %v", f.Kind)
	}
	readAll(t, f)
	if u := f.Weights.Unused(); len(u) != 0 {
		t.Errorf("unused: %v", u)
	}
}

// TestKindFromWeights opens folders whose config names no architecture.
func TestKindFromWeights(t *testing.T) {
	for src, want := range map[string]ModelKind{"tiny-captioning": KindCaptioning, "tiny-retrieval": KindRetrieval} {
		dir := copyDir(t, filepath.Join(tinyDir, src))
		editConfig(t, dir, func(m map[string]any) { delete(m, "architectures") })
		f, err := OpenFolder(dir)
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind != want {
			t.Errorf("%s: kind %v, want %v", src, f.Kind, want)
		}
		f.Close()
	}
}

// editConfig rewrites dir/config.json through edit.
func editConfig(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, ConfigName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestShardedCheckpoints(t *testing.T) {
	src, err := OpenCheckpoint(filepath.Join(tinyDir, "tiny-captioning", SafetensorsName))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	names := src.Names()

	// Safetensors shards: split the tensors over two files.
	dir := copyDir(t, filepath.Join(tinyDir, "tiny-captioning"))
	os.Remove(filepath.Join(dir, SafetensorsName))
	weightMap := map[string]string{}
	shards := []*safetensors.Writer{safetensors.NewWriter(), safetensors.NewWriter()}
	files := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
	for i, n := range names {
		v, err := src.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := src.Shape(n)
		shape := make([]int64, len(s))
		for j, d := range s {
			shape[j] = int64(d)
		}
		if err := shards[i%2].AddFloat32(n, shape, v); err != nil {
			t.Fatal(err)
		}
		weightMap[n] = files[i%2]
	}
	for i, w := range shards {
		if err := w.WriteFile(filepath.Join(dir, files[i])); err != nil {
			t.Fatal(err)
		}
	}
	writeIndex(t, filepath.Join(dir, SafetensorsIndexName), weightMap)
	f, err := OpenFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, f)
	f.Close()

	// Torch shards: an index over two copies of pytorch_model.bin.
	dir = copyDir(t, filepath.Join(tinyDir, "tiny-captioning-bin"))
	bin := filepath.Join(dir, PytorchName)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	files = []string{"pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"}
	for _, n := range files {
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(bin)
	weightMap = map[string]string{}
	for i, n := range append(names, DecoderWeightName) {
		weightMap[n] = files[i%2]
	}
	writeIndex(t, filepath.Join(dir, PytorchIndexName), weightMap)
	f, err = OpenFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.Weights.Format() != "pytorch" {
		t.Errorf("format %s", f.Weights.Format())
	}
	readAll(t, f)
	f.Close()

	// An index naming a tensor its shard lacks.
	weightMap["not.there"] = files[0]
	writeIndex(t, filepath.Join(dir, PytorchIndexName), weightMap)
	if _, err := OpenFolder(dir); err == nil || !strings.Contains(err.Error(), "not.there") {
		t.Errorf("missing shard tensor: %v", err)
	}
}

func writeIndex(t *testing.T, path string, weightMap map[string]string) {
	t.Helper()
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFolderErrors(t *testing.T) {
	tiny := filepath.Join(tinyDir, "tiny-captioning")
	cases := []struct {
		name  string
		setup func(dir string)
		want  []string
	}{
		{"no config", func(dir string) { os.Remove(filepath.Join(dir, ConfigName)) }, []string{"no config.json"}},
		{"not blip", func(dir string) {
			os.WriteFile(filepath.Join(dir, ConfigName), []byte(`{"model_type": "bert", "hidden_size": 768}`), 0o644)
		}, []string{"config.json", "not a BLIP model"}},
		{"no weights", func(dir string) { os.Remove(filepath.Join(dir, SafetensorsName)) }, []string{"no weights file"}},
		{"hidden size", func(dir string) {
			editConfig(t, dir, func(m map[string]any) { m["text_config"].(map[string]any)["hidden_size"] = 32 })
		}, []string{"do not match the config", "text_decoder.bert.embeddings.word_embeddings.weight", "[137 64]", "[137 32]", "more"}},
		{"layers", func(dir string) {
			editConfig(t, dir, func(m map[string]any) { m["vision_config"].(map[string]any)["num_hidden_layers"] = 3 })
		}, []string{`missing tensor "vision_model.encoder.layers.2.layer_norm1.weight"`}},
		{"image size", func(dir string) {
			editConfig(t, dir, func(m map[string]any) { m["vision_config"].(map[string]any)["image_size"] = 96 })
		}, []string{"vision_model.embeddings.position_embedding", "[1 17 64]", "[1 37 64]"}},
		{"wrong class", func(dir string) {
			editConfig(t, dir, func(m map[string]any) { m["architectures"] = []string{"BlipForImageTextRetrieval"} })
		}, []string{`module "itm_head" is missing`, `module "text_encoder" is missing`, "look like BlipForConditionalGeneration"}},
		{"no blip modules", func(dir string) {
			editConfig(t, dir, func(m map[string]any) { delete(m, "architectures") })
			w := safetensors.NewWriter()
			w.AddFloat32("bert.embeddings.word_embeddings.weight", []int64{2}, []float32{1, 2})
			w.WriteFile(filepath.Join(dir, SafetensorsName))
		}, []string{"not a BLIP model"}},
		{"truncated weights", func(dir string) {
			p := filepath.Join(dir, SafetensorsName)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)/2], 0o644)
		}, []string{"model.safetensors", "truncated"}},
		{"garbage bin", func(dir string) {
			os.Remove(filepath.Join(dir, SafetensorsName))
			os.WriteFile(filepath.Join(dir, PytorchName), []byte("<html>rate limited</html>"), 0o644)
		}, []string{"pytorch_model.bin", "not a PyTorch checkpoint"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, tiny)
			c.setup(dir)
			f, err := OpenFolder(dir)
			if err == nil {
				f.Close()
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	if _, err := OpenFolder(filepath.Join(tiny, ConfigName)); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("file as folder: %v", err)
	}
}

// TestCorruptBinFolder damages pytorch_model.bin in many places: opening and
// reading must fail cleanly or succeed, never panic, and truncation must
// always be reported with the file's name.
func TestCorruptBinFolder(t *testing.T) {
	dir := copyDir(t, filepath.Join(tinyDir, "tiny-captioning-bin"))
	p := filepath.Join(dir, PytorchName)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	try := func(b []byte) error {
		os.WriteFile(p, b, 0o644)
		f, err := OpenFolder(dir)
		if err != nil {
			return err
		}
		defer f.Close()
		specs, _ := ExpectedTensors(f.Config, f.Kind)
		for _, s := range specs {
			if _, err := f.Weights.Require(s.Name, s.Shape...); err != nil {
				return err
			}
		}
		return nil
	}
	for n := 0; n < len(data); n += len(data)/41 + 1 {
		if err := try(data[:n]); err == nil || !strings.Contains(err.Error(), PytorchName) {
			t.Fatalf("truncated at %d: %v", n, err)
		}
	}
	detected, total := 0, 0
	for i := 0; i < len(data); i += len(data)/61 + 1 {
		b := append([]byte(nil), data...)
		b[i] ^= 0xa5
		total++
		if try(b) != nil {
			detected++
		}
	}
	if detected < total*9/10 {
		t.Errorf("%d of %d corruptions detected", detected, total)
	}
}

// TestTiedBiasAndBuffers covers older HF .bin files: the LM bias saved as
// cls.predictions.decoder.bias and position_ids buffers.
func TestTiedBiasAndBuffers(t *testing.T) {
	src, err := OpenCheckpoint(filepath.Join(tinyDir, "tiny-captioning", SafetensorsName))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dir := copyDir(t, filepath.Join(tinyDir, "tiny-captioning"))
	w := safetensors.NewWriter()
	for _, n := range src.Names() {
		v, _ := src.Float32(n)
		s, _ := src.Shape(n)
		shape := make([]int64, len(s))
		for j, d := range s {
			shape[j] = int64(d)
		}
		if n == decoderBiasName {
			n = decoderBiasTieName
		}
		w.AddFloat32(n, shape, v)
	}
	w.AddInt64("text_decoder.bert.embeddings.position_ids", []int64{1, 64}, make([]int64, 64))
	if err := w.WriteFile(filepath.Join(dir, SafetensorsName)); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	readAll(t, f)
	if u := f.Weights.Unused(); len(u) != 0 {
		t.Errorf("unused: %v", u)
	}
}

// TestConcurrentReads reads a torch checkpoint from several goroutines, as a
// model builder may.
func TestConcurrentReads(t *testing.T) {
	f, err := OpenFolder(filepath.Join(tinyDir, "tiny-captioning-bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	specs, _ := ExpectedTensors(f.Config, f.Kind)
	errs := make(chan error, len(specs))
	for _, s := range specs {
		go func() {
			_, err := f.Weights.Require(s.Name, s.Shape...)
			errs <- err
		}()
	}
	for range specs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if u := f.Weights.Unused(); len(u) != 0 {
		t.Errorf("unused: %v", u)
	}
}
