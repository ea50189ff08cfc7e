package torchpt

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// TensorInfo describes one tensor of a state dict.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// StateDict is a mapping of names to tensors found in an archive.
type StateDict struct {
	a           *Archive
	where       string // e.g. `["model"]`, for messages
	tensors     map[string]*Tensor
	unsupported map[string]string
	others      []string
}

// kv is one dict entry.
type kv struct {
	key any
	val any
}

// dictItems returns the entries of a pickled dict or OrderedDict in order.
func dictItems(v any) ([]kv, bool) {
	switch d := v.(type) {
	case *types.Dict:
		out := make([]kv, 0, d.Len())
		for _, e := range *d {
			out = append(out, kv{e.Key, e.Value})
		}
		return out, true
	case *types.OrderedDict:
		out := make([]kv, 0, d.Len())
		for el := d.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			out = append(out, kv{e.Key, e.Value})
		}
		return out, true
	}
	return nil, false
}

// lookup returns the value of a string key in a dict.
func lookup(v any, key string) (any, bool) {
	items, _ := dictItems(v)
	for _, e := range items {
		if k, ok := e.key.(string); ok && k == key {
			return e.val, true
		}
	}
	return nil, false
}

// Keys returns the string keys of the archive's root object when it is a
// dict (nil otherwise), for messages and for finding a nested state dict.
func (a *Archive) Keys() []string {
	items, _ := dictItems(a.root)
	var out []string
	for _, e := range items {
		if k, ok := e.key.(string); ok {
			out = append(out, k)
		}
	}
	return out
}

// StateDict returns the tensors of the dict reached from the root by
// following keys (none: the root itself). Non-tensor entries are skipped and
// listed by Others.
func (a *Archive) StateDict(keys ...string) (*StateDict, error) {
	v := a.root
	var where strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&where, "[%q]", k)
		next, ok := lookup(v, k)
		if !ok {
			return nil, a.errf("no entry %s in the checkpoint (top-level keys: %s)", where.String(), strings.Join(a.Keys(), ", "))
		}
		v = next
	}
	items, ok := dictItems(v)
	if !ok {
		return nil, a.errf("checkpoint object%s is a %s, not a dict of tensors", where.String(), typeName(v))
	}
	s := &StateDict{a: a, where: where.String(), tensors: map[string]*Tensor{}, unsupported: map[string]string{}}
	for _, e := range items {
		name, ok := e.key.(string)
		if !ok {
			s.others = append(s.others, fmt.Sprint(e.key))
			continue
		}
		switch t := e.val.(type) {
		case *Tensor:
			s.tensors[name] = t
		case *unsupportedTensor:
			s.unsupported[name] = t.fn
		default:
			s.others = append(s.others, name)
		}
	}
	return s, nil
}

// stateDictKeys are the entries under which training scripts commonly nest
// a state dict ({"model": ...} in salesforce/BLIP).
var stateDictKeys = []string{"model", "state_dict", "model_state_dict", "module", "net"}

// FindStateDict returns the root dict if it holds tensors, else the first
// of the usual nested entries ("model", "state_dict", ...) that does.
func (a *Archive) FindStateDict() (*StateDict, error) {
	if s, err := a.StateDict(); err == nil && s.Len() > 0 {
		return s, nil
	}
	for _, k := range stateDictKeys {
		if _, ok := lookup(a.root, k); !ok {
			continue
		}
		if s, err := a.StateDict(k); err == nil && s.Len() > 0 {
			return s, nil
		}
	}
	if keys := a.Keys(); len(keys) > 0 {
		return nil, a.errf("no state dict of tensors found (top-level keys: %s)", strings.Join(keys, ", "))
	}
	return nil, a.errf("no state dict of tensors found (the checkpoint holds a %s)", typeName(a.root))
}

// typeName names a pickled value's type for messages.
func typeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case *pyObject:
		return x.Class.Module + "." + x.Class.Name
	case *Tensor:
		return "tensor"
	case string:
		return "str"
	case int:
		return "int"
	}
	return fmt.Sprintf("%T", v)
}

// Archive returns the archive the state dict belongs to.
func (s *StateDict) Archive() *Archive { return s.a }

// Where returns the keys leading from the archive's root to the state dict,
// as in `["model"]` (empty for the root).
func (s *StateDict) Where() string { return s.where }

// Len returns the number of tensors.
func (s *StateDict) Len() int { return len(s.tensors) }

// Names returns the tensor names in sorted order.
func (s *StateDict) Names() []string {
	out := make([]string, 0, len(s.tensors))
	for n := range s.tensors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Others returns the names of entries that are not tensors (skipped), and of
// tensors of a kind this package cannot read (quantized, sparse).
func (s *StateDict) Others() []string {
	out := append([]string(nil), s.others...)
	for n := range s.unsupported {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Info describes a tensor.
func (s *StateDict) Info(name string) (TensorInfo, bool) {
	t, ok := s.tensors[name]
	if !ok {
		return TensorInfo{}, false
	}
	return TensorInfo{Name: name, DType: t.Storage.DType, Shape: append([]int64(nil), t.Shape...)}, true
}

// Tensor returns the view behind a name.
func (s *StateDict) Tensor(name string) (*Tensor, bool) {
	t, ok := s.tensors[name]
	return t, ok
}

// errf prefixes an error with the file and tensor.
func (s *StateDict) errf(name, format string, args ...any) error {
	return fmt.Errorf("torchpt: %s: tensor %q: %s", s.a.path, name, fmt.Sprintf(format, args...))
}

// get returns a tensor or a not-found error.
func (s *StateDict) get(name string) (*Tensor, error) {
	if t, ok := s.tensors[name]; ok {
		return t, nil
	}
	if fn, ok := s.unsupported[name]; ok {
		return nil, s.errf(name, "stored with %s, which is not supported", fn)
	}
	return nil, fmt.Errorf("torchpt: %s: no tensor %q", s.a.path, name)
}

// Raw returns a tensor's elements as contiguous row-major little-endian
// bytes of its dtype (non-contiguous views are gathered).
func (s *StateDict) Raw(name string) ([]byte, error) {
	t, err := s.get(name)
	if err != nil {
		return nil, err
	}
	b, err := t.bytes(s.a.bigEndian)
	if err != nil {
		return nil, s.errf(name, "%v", err)
	}
	return b, nil
}

// Float32 returns a float tensor (F32, F16, BF16 or F64) as float32.
func (s *StateDict) Float32(name string) ([]float32, error) {
	t, err := s.get(name)
	if err != nil {
		return nil, err
	}
	if !t.Storage.DType.IsFloat() {
		return nil, s.errf(name, "dtype %s is not a float type", t.Storage.DType)
	}
	raw, err := s.Raw(name)
	if err != nil {
		return nil, err
	}
	out, err := decodeFloat32(raw, t.Storage.DType)
	if err != nil {
		return nil, s.errf(name, "%v", err)
	}
	return out, nil
}

// SameData reports whether two names are views of the same elements (tied
// weights saved once): same storage, offset, shape and stride.
func (s *StateDict) SameData(a, b string) bool {
	x, ok1 := s.tensors[a]
	y, ok2 := s.tensors[b]
	if !ok1 || !ok2 || x.Storage != y.Storage || x.Offset != y.Offset {
		return false
	}
	return equalInts(x.Shape, y.Shape) && equalInts(x.Stride, y.Stride)
}

// Equal reports whether two tensors hold the same dtype, shape and bytes.
func (s *StateDict) Equal(a, b string) (bool, error) {
	if s.SameData(a, b) {
		return true, nil
	}
	ia, ok1 := s.Info(a)
	ib, ok2 := s.Info(b)
	if !ok1 || !ok2 || ia.DType != ib.DType || !equalInts(ia.Shape, ib.Shape) {
		return false, nil
	}
	ra, err := s.Raw(a)
	if err != nil {
		return false, err
	}
	rb, err := s.Raw(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ra, rb), nil
}

func equalInts(a, b []int64) bool {
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
