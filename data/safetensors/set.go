package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// IndexName and SingleName are the file names HF uses for a sharded and a
// single-file checkpoint.
const (
	IndexName  = "model.safetensors.index.json"
	SingleName = "model.safetensors"
)

// Set is a group of safetensors files read as one: a sharded checkpoint
// described by an index file, or a single file.
type Set struct {
	files    []*File
	owner    map[string]*File
	metadata map[string]string
}

var _ Tensors = (*Set)(nil)

// OpenSet opens a checkpoint given a directory (model.safetensors, else
// model.safetensors.index.json), an index .json file, or a .safetensors file.
func OpenSet(path string) (*Set, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.IsDir() {
		single := filepath.Join(path, SingleName)
		if _, err := os.Stat(single); err == nil {
			return openSingle(single)
		}
		index := filepath.Join(path, IndexName)
		if _, err := os.Stat(index); err == nil {
			return OpenIndex(index)
		}
		return nil, fmt.Errorf("safetensors: %s: neither %s nor %s found", path, SingleName, IndexName)
	}
	if strings.HasSuffix(path, ".json") {
		return OpenIndex(path)
	}
	return openSingle(path)
}

// openSingle wraps one file as a Set.
func openSingle(path string) (*Set, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	s := &Set{files: []*File{f}, owner: map[string]*File{}, metadata: f.Metadata()}
	for _, t := range f.h.tensors {
		s.owner[t.Name] = f
	}
	return s, nil
}

// indexFile is the JSON layout of model.safetensors.index.json.
type indexFile struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// OpenIndex opens every shard named by an index file's weight_map (paths
// relative to the index's directory) and checks that each listed tensor is in
// the shard the index names. Tensors present in a shard but absent from the
// weight map are not exposed, as HF loads by the weight map.
func OpenIndex(indexPath string) (*Set, error) {
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var idx indexFile
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("safetensors: %s: bad index JSON: %v", indexPath, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: %s: index has no weight_map entries", indexPath)
	}
	dir := filepath.Dir(indexPath)
	s := &Set{owner: map[string]*File{}}
	if len(idx.Metadata) > 0 {
		s.metadata = map[string]string{}
		for k, v := range idx.Metadata {
			s.metadata[k] = fmt.Sprint(v)
		}
	}
	shards := map[string]*File{}
	names := make([]string, 0, len(idx.WeightMap))
	for name := range idx.WeightMap {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		shard := idx.WeightMap[name]
		if !filepath.IsLocal(shard) {
			s.Close()
			return nil, fmt.Errorf("safetensors: %s: tensor %q: shard path %q must be relative to the index directory", indexPath, name, shard)
		}
		f, ok := shards[shard]
		if !ok {
			f, err = Open(filepath.Join(dir, shard))
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("%w (shard of %s)", err, indexPath)
			}
			shards[shard] = f
			s.files = append(s.files, f)
		}
		if _, ok := f.h.byName[name]; !ok {
			s.Close()
			return nil, fmt.Errorf("safetensors: %s: tensor %q: listed in the index but missing from %s", indexPath, name, f.path)
		}
		s.owner[name] = f
	}
	return s, nil
}

// Files returns the open files of the set.
func (s *Set) Files() []*File { return append([]*File(nil), s.files...) }

// Metadata returns the index's "metadata" (values formatted as strings) or,
// for a single file, its "__metadata__".
func (s *Set) Metadata() map[string]string {
	m := make(map[string]string, len(s.metadata))
	for k, v := range s.metadata {
		m[k] = v
	}
	return m
}

// Names returns all tensor names in sorted order.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.owner))
	for n := range s.owner {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// File returns the file holding the named tensor.
func (s *Set) File(name string) (*File, bool) {
	f, ok := s.owner[name]
	return f, ok
}

// get returns the file of a tensor or a not-found error.
func (s *Set) get(name string) (*File, error) {
	f, ok := s.owner[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: no tensor %q in the checkpoint", name)
	}
	return f, nil
}

// Info describes the named tensor.
func (s *Set) Info(name string) (TensorInfo, bool) {
	f, ok := s.owner[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// Raw returns the stored bytes of a tensor.
func (s *Set) Raw(name string) ([]byte, error) {
	f, err := s.get(name)
	if err != nil {
		return nil, err
	}
	return f.Raw(name)
}

// Float32 returns a float tensor converted to float32.
func (s *Set) Float32(name string) ([]float32, error) {
	f, err := s.get(name)
	if err != nil {
		return nil, err
	}
	return f.Float32(name)
}

// Int64 returns an integer tensor widened to int64.
func (s *Set) Int64(name string) ([]int64, error) {
	f, err := s.get(name)
	if err != nil {
		return nil, err
	}
	return f.Int64(name)
}

// Int32 returns an integer tensor as int32.
func (s *Set) Int32(name string) ([]int32, error) {
	f, err := s.get(name)
	if err != nil {
		return nil, err
	}
	return f.Int32(name)
}

// Close closes every shard.
func (s *Set) Close() error {
	var errs []error
	for _, f := range s.files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
