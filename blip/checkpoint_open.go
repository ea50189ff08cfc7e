package blip

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"blip/blip/torchpt"
	"blip/data/safetensors"
)

// Weight file names of an HF folder, in transformers' order of preference.
const (
	SafetensorsName      = safetensors.SingleName // model.safetensors
	SafetensorsIndexName = safetensors.IndexName  // model.safetensors.index.json
	PytorchName          = "pytorch_model.bin"
	PytorchIndexName     = "pytorch_model.bin.index.json"
)

// OpenCheckpoint opens the weights at path: a folder (the first of
// model.safetensors, model.safetensors.index.json, pytorch_model.bin,
// pytorch_model.bin.index.json that exists), or one such file. Any
// torch.save file (.bin, .pt, .pth) is accepted; its state dict may be the
// root object or nested under "model" or "state_dict".
func OpenCheckpoint(path string) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if st.IsDir() {
		for _, name := range []string{SafetensorsName, SafetensorsIndexName, PytorchName, PytorchIndexName} {
			p := filepath.Join(path, name)
			if _, err := os.Stat(p); err == nil {
				return OpenCheckpoint(p)
			}
		}
		return nil, fmt.Errorf("checkpoint: %s: %w (looked for %s, %s, %s, %s)", path, errNoWeights,
			SafetensorsName, SafetensorsIndexName, PytorchName, PytorchIndexName)
	}
	switch {
	case strings.HasSuffix(path, ".safetensors"):
		return openSafetensors(path)
	case strings.HasSuffix(path, ".json"):
		return openIndex(path)
	}
	return openTorch(path)
}

// openSafetensors opens a single safetensors file or a safetensors index.
func openSafetensors(path string) (*Checkpoint, error) {
	set, err := safetensors.OpenSet(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return newCheckpoint(path, "safetensors", stSource{set}), nil
}

// openIndex opens a sharded checkpoint, safetensors or torch, by the file
// names of its weight_map.
func openIndex(path string) (*Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: bad index JSON: %v", path, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("checkpoint: %s: index has no weight_map entries", path)
	}
	nst := 0
	for _, shard := range idx.WeightMap {
		if strings.HasSuffix(shard, ".safetensors") {
			nst++
		}
	}
	switch nst {
	case len(idx.WeightMap):
		return openSafetensors(path)
	case 0:
		return openTorchIndex(path, idx.WeightMap)
	}
	return nil, fmt.Errorf("checkpoint: %s: index mixes safetensors and other shards", path)
}

// openTorch opens one torch.save file.
func openTorch(path string) (*Checkpoint, error) {
	a, err := torchpt.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	sd, err := a.FindStateDict()
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	src := &torchSource{byName: map[string]*torchpt.StateDict{}}
	src.add(sd)
	return newCheckpoint(path, "pytorch", src), nil
}

// openTorchIndex opens the shards of a pytorch_model.bin.index.json.
func openTorchIndex(path string, weightMap map[string]string) (*Checkpoint, error) {
	dir := filepath.Dir(path)
	src := &torchSource{byName: map[string]*torchpt.StateDict{}}
	shards := map[string]*torchpt.StateDict{}
	names := make([]string, 0, len(weightMap))
	for n := range weightMap {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		shard := weightMap[name]
		if !filepath.IsLocal(shard) {
			src.close()
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: shard path %q must be relative to the index", path, name, shard)
		}
		sd, ok := shards[shard]
		if !ok {
			a, err := torchpt.Open(filepath.Join(dir, shard))
			if err != nil {
				src.close()
				return nil, fmt.Errorf("checkpoint: %w (shard of %s)", err, path)
			}
			src.archives = append(src.archives, a)
			if sd, err = a.FindStateDict(); err != nil {
				src.close()
				return nil, fmt.Errorf("checkpoint: %w (shard of %s)", err, path)
			}
			shards[shard] = sd
		}
		if _, ok := sd.Info(name); !ok {
			src.close()
			return nil, fmt.Errorf("checkpoint: %s: tensor %q is listed in the index but missing from %s", path, name, shard)
		}
		src.byName[name] = sd
	}
	return newCheckpoint(path, "pytorch", src), nil
}

// stSource adapts a safetensors.Set.
type stSource struct{ set *safetensors.Set }

func (s stSource) names() []string { return s.set.Names() }
func (s stSource) info(name string) (safetensors.DType, []int64, bool) {
	t, ok := s.set.Info(name)
	return t.DType, t.Shape, ok
}
func (s stSource) float32(name string) ([]float32, error) {
	v, err := s.set.Float32(name)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return v, nil
}
func (s stSource) close() error { return s.set.Close() }

// torchSource adapts one or more torch state dicts (shards).
type torchSource struct {
	byName   map[string]*torchpt.StateDict
	archives []*torchpt.Archive
}

// add exposes every tensor of sd.
func (s *torchSource) add(sd *torchpt.StateDict) {
	s.archives = append(s.archives, sd.Archive())
	for _, n := range sd.Names() {
		s.byName[n] = sd
	}
}

func (s *torchSource) names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (s *torchSource) info(name string) (safetensors.DType, []int64, bool) {
	sd, ok := s.byName[name]
	if !ok {
		return "", nil, false
	}
	t, ok := sd.Info(name)
	return t.DType, t.Shape, ok
}

func (s *torchSource) float32(name string) ([]float32, error) {
	sd, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("checkpoint: no tensor %q", name)
	}
	v, err := sd.Float32(name)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return v, nil
}

func (s *torchSource) close() error {
	var errs []error
	for _, a := range s.archives {
		errs = append(errs, a.Close())
	}
	return errors.Join(errs...)
}
