package blip

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"blip/data/safetensors"
)

// tensorSource is a container of named tensors: a safetensors file or set,
// or one or more torch.save state dicts.
type tensorSource interface {
	names() []string
	info(name string) (dtype safetensors.DType, shape []int64, ok bool)
	float32(name string) ([]float32, error)
	close() error
}

// Checkpoint gives the tensors of a model by their exact HF names, whatever
// the container (model.safetensors, a sharded safetensors index,
// pytorch_model.bin or its sharded index). Data is read on demand and
// converted to float32 (F16, BF16 and F64 included).
//
// A Checkpoint remembers which tensors were read, so that after a model is
// built Unused lists what the file held that the model did not take. It is
// safe for concurrent use.
type Checkpoint struct {
	path   string
	format string
	src    tensorSource

	mu      sync.Mutex
	alias   map[string]string // name -> stored name it reads
	used    map[string]bool   // stored names read
	ignored map[string]bool   // stored names left out of Unused
}

// newCheckpoint wraps a source.
func newCheckpoint(path, format string, src tensorSource) *Checkpoint {
	return &Checkpoint{path: path, format: format, src: src,
		alias: map[string]string{}, used: map[string]bool{}, ignored: map[string]bool{}}
}

// Path returns the file or folder the checkpoint was opened from.
func (c *Checkpoint) Path() string { return c.path }

// Format returns "safetensors" or "pytorch".
func (c *Checkpoint) Format() string { return c.format }

// Close releases the underlying files.
func (c *Checkpoint) Close() error { return c.src.close() }

// errf prefixes an error with the checkpoint's path.
func (c *Checkpoint) errf(format string, args ...any) error {
	return fmt.Errorf("checkpoint: %s: %s", c.path, fmt.Sprintf(format, args...))
}

// resolve maps a name to the stored tensor it reads.
func (c *Checkpoint) resolve(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.alias[name]; ok {
		return t
	}
	return name
}

// Names returns every tensor name, aliases included, sorted.
func (c *Checkpoint) Names() []string {
	names := c.src.names()
	c.mu.Lock()
	for a := range c.alias {
		if _, _, stored := c.src.info(a); !stored {
			names = append(names, a)
		}
	}
	c.mu.Unlock()
	sort.Strings(names)
	return names
}

// Has reports whether a tensor of that name exists.
func (c *Checkpoint) Has(name string) bool {
	_, _, ok := c.src.info(c.resolve(name))
	return ok
}

// Shape returns a tensor's shape; ok is false when there is no such tensor.
func (c *Checkpoint) Shape(name string) (shape []int, ok bool) {
	_, s, ok := c.src.info(c.resolve(name))
	if !ok {
		return nil, false
	}
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out, true
}

// DType returns a tensor's stored element type.
func (c *Checkpoint) DType(name string) (safetensors.DType, bool) {
	dt, _, ok := c.src.info(c.resolve(name))
	return dt, ok
}

// Float32 reads a float tensor as float32 and marks it used.
func (c *Checkpoint) Float32(name string) ([]float32, error) {
	stored := c.resolve(name)
	if _, _, ok := c.src.info(stored); !ok {
		return nil, c.errf("missing tensor %q", name)
	}
	v, err := c.src.float32(stored)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.used[stored] = true
	c.mu.Unlock()
	return v, nil
}

// CheckShape returns an error naming the tensor and both shapes when the
// stored shape differs from shape, or naming the tensor when it is absent.
func (c *Checkpoint) CheckShape(name string, shape ...int) error {
	got, ok := c.Shape(name)
	if !ok {
		return c.errf("missing tensor %q (expected shape %v)", name, shape)
	}
	if !equalShape(got, shape) {
		return c.errf("tensor %q has shape %v, expected %v", name, got, shape)
	}
	return nil
}

// Require reads a tensor whose shape must be exactly shape: the accessor
// model construction uses, so that a checkpoint that does not fit its config
// fails with the key and both shapes rather than computing garbage.
func (c *Checkpoint) Require(name string, shape ...int) ([]float32, error) {
	if err := c.CheckShape(name, shape...); err != nil {
		return nil, err
	}
	return c.Float32(name)
}

// Alias makes name read the stored tensor target (tied weights saved once).
// It fails if target is absent; an existing tensor called name is hidden.
func (c *Checkpoint) Alias(name, target string) error {
	if _, _, ok := c.src.info(target); !ok {
		return c.errf("cannot tie %q to missing tensor %q", name, target)
	}
	c.mu.Lock()
	c.alias[name] = target
	c.mu.Unlock()
	return nil
}

// Ignore leaves stored tensors out of Unused: buffers and tied duplicates
// that transformers also skips silently.
func (c *Checkpoint) Ignore(names ...string) {
	c.mu.Lock()
	for _, n := range names {
		c.ignored[n] = true
	}
	c.mu.Unlock()
}

// Unused returns the stored tensors not read so far (and not ignored),
// sorted: after a model is built, the checkpoint's unexpected keys.
func (c *Checkpoint) Unused() []string {
	var out []string
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.src.names() {
		if !c.used[n] && !c.ignored[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// maxListed bounds how many problems one error lists.
const maxListed = 12

// Check compares the checkpoint with the parameters a model needs: every
// spec must be present with its exact shape and a float type. All problems
// are reported in one error (the first few listed, then a count), so a
// config that disagrees with its weights is diagnosed at load time.
func (c *Checkpoint) Check(specs []TensorSpec) error {
	var problems []string
	// A module missing as a whole (wrong model class, truncated shard set)
	// is one line, not one per tensor.
	expected, missing := map[string]int{}, map[string]int{}
	for _, s := range specs {
		top, _, _ := strings.Cut(s.Name, ".")
		expected[top]++
		if _, _, ok := c.src.info(c.resolve(s.Name)); !ok {
			missing[top]++
		}
	}
	reported := map[string]bool{}
	for _, s := range specs {
		top, _, _ := strings.Cut(s.Name, ".")
		dt, shape, ok := c.src.info(c.resolve(s.Name))
		switch {
		case !ok && missing[top] == expected[top] && expected[top] > 1:
			if !reported[top] {
				reported[top] = true
				problems = append(problems, fmt.Sprintf("module %q is missing: none of its %d tensors (e.g. %q) is present", top, expected[top], s.Name))
			}
		case !ok:
			problems = append(problems, fmt.Sprintf("missing tensor %q (expected shape %v)", s.Name, s.Shape))
		case !equalShape64(shape, s.Shape):
			problems = append(problems, fmt.Sprintf("tensor %q has shape %v, expected %v", s.Name, shape, s.Shape))
		case !dt.IsFloat():
			problems = append(problems, fmt.Sprintf("tensor %q has dtype %s, expected a float type", s.Name, dt))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	msg := problems
	if len(msg) > maxListed {
		msg = append(msg[:maxListed:maxListed], fmt.Sprintf("... and %d more", len(problems)-maxListed))
	}
	return c.errf("weights do not match the config:\n  %s", strings.Join(msg, "\n  "))
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalShape64(a []int64, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != int64(b[i]) {
			return false
		}
	}
	return true
}

// errNoWeights is wrapped by OpenCheckpoint when a folder has no weight file.
var errNoWeights = errors.New("no weights file")
