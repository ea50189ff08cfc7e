package torchpt

import (
	"bufio"
	"bytes"
	"fmt"
	"math/big"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// pyClass is a global the pickle refers to that we do not model: calling or
// instantiating it only records the arguments, so arbitrary objects in a
// checkpoint (training args, optimizer state) load as inert data.
type pyClass struct{ Module, Name string }

// pyObject is an instance of a pyClass.
type pyObject struct {
	Class *pyClass
	Args  []any
	State any
	Dict  map[string]any
}

func (c *pyClass) Call(args ...any) (any, error)  { return &pyObject{Class: c, Args: args}, nil }
func (c *pyClass) PyNew(args ...any) (any, error) { return c.Call(args...) }

func (o *pyObject) PySetState(state any) error { o.State = state; return nil }

func (o *pyObject) PyDictSet(key, value any) error {
	k, ok := key.(string)
	if !ok {
		return fmt.Errorf("attribute name %v is not a string", key)
	}
	if o.Dict == nil {
		o.Dict = map[string]any{}
	}
	o.Dict[k] = value
	return nil
}

// storageClass is a torch.<Type>Storage global.
type storageClass struct{ dtype DType }

// unsupportedTensor stands for a tensor torch rebuilt with a function we do
// not implement (quantized, sparse, ...): it fails only if asked for.
type unsupportedTensor struct{ fn string }

// rebuildFunc is a torch._utils rebuild function.
type rebuildFunc struct{ name string }

// Call implements the rebuild functions torch.save emits for dense tensors
// and parameters.
func (f *rebuildFunc) Call(args ...any) (any, error) {
	switch f.name {
	case "_rebuild_tensor", "_rebuild_tensor_v2":
		// (storage, storage_offset, size, stride[, requires_grad,
		// backward_hooks[, metadata]])
		if len(args) < 4 {
			return nil, fmt.Errorf("%s: %d arguments, want at least 4", f.name, len(args))
		}
		st, ok := args[0].(*Storage)
		if !ok {
			return nil, fmt.Errorf("%s: first argument is %T, not a storage", f.name, args[0])
		}
		off, ok := toInt64(args[1])
		if !ok {
			return nil, fmt.Errorf("%s: storage offset %v is not an integer", f.name, args[1])
		}
		shape, err := intTuple(args[2])
		if err != nil {
			return nil, fmt.Errorf("%s: size: %v", f.name, err)
		}
		stride, err := intTuple(args[3])
		if err != nil {
			return nil, fmt.Errorf("%s: stride: %v", f.name, err)
		}
		return &Tensor{Storage: st, Offset: off, Shape: shape, Stride: stride}, nil
	case "_rebuild_parameter", "_rebuild_parameter_with_state":
		// (data, requires_grad, backward_hooks[, state]): a Parameter is its data.
		if len(args) < 1 {
			return nil, fmt.Errorf("%s: no arguments", f.name)
		}
		return args[0], nil
	case "_rebuild_from_type_v2":
		// (func, new_type, args, state): a tensor subclass; rebuild the
		// plain tensor with func(*args).
		if len(args) < 3 {
			return nil, fmt.Errorf("%s: %d arguments, want 4", f.name, len(args))
		}
		fn, ok := args[0].(types.Callable)
		inner, ok2 := args[2].(*types.Tuple)
		if !ok || !ok2 {
			return nil, fmt.Errorf("%s: unexpected arguments", f.name)
		}
		return fn.Call(*inner...)
	}
	return &unsupportedTensor{fn: "torch._utils." + f.name}, nil
}

// findClass resolves the globals a torch checkpoint uses; everything else
// becomes an inert pyClass.
func findClass(module, name string) (any, error) {
	switch module {
	case "torch._utils", "torch._tensor":
		if strings.HasPrefix(name, "_rebuild_") {
			return &rebuildFunc{name: name}, nil
		}
	case "torch":
		if dt, ok := storageDTypes[name]; ok {
			return &storageClass{dtype: dt}, nil
		}
	}
	return &pyClass{Module: module, Name: name}, nil
}

// toInt64 converts a pickled integer (int or *big.Int) to int64.
func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), true
		}
	}
	return 0, false
}

// intTuple converts a tuple of integers.
func intTuple(v any) ([]int64, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("%T is not a tuple", v)
	}
	out := make([]int64, t.Len())
	for i := range out {
		x, ok := toInt64(t.Get(i))
		if !ok {
			return nil, fmt.Errorf("element %d (%v) is not an integer", i, t.Get(i))
		}
		out[i] = x
	}
	return out, nil
}

// storagePID is a decoded ('storage', class, key, location, numel[, view])
// persistent id.
type storagePID struct {
	class *storageClass
	key   string
	numel int64
	view  any // legacy format only
}

// parseStoragePID decodes a persistent id; n is the minimum tuple length.
func parseStoragePID(pid any, n int) (storagePID, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() < n {
		return storagePID{}, fmt.Errorf("persistent id %v: want a tuple of %d", pid, n)
	}
	if tag, _ := t.Get(0).(string); tag != "storage" {
		return storagePID{}, fmt.Errorf("persistent id of kind %v: only storages are supported", t.Get(0))
	}
	var p storagePID
	switch c := t.Get(1).(type) {
	case *storageClass:
		p.class = c
	case *pyClass:
		return p, fmt.Errorf("unsupported storage type %s.%s", c.Module, c.Name)
	default:
		return p, fmt.Errorf("persistent id: storage type %v is not a class", t.Get(1))
	}
	p.key, ok = t.Get(2).(string)
	if !ok {
		return p, fmt.Errorf("persistent id: storage key %v is not a string", t.Get(2))
	}
	p.numel, ok = toInt64(t.Get(4))
	if !ok || p.numel < 0 {
		return p, fmt.Errorf("persistent id: storage %q size %v is not a non-negative integer", p.key, t.Get(4))
	}
	if t.Len() > 5 {
		p.view = t.Get(5)
	}
	return p, nil
}

// maxPickle bounds the size of a pickle we are willing to hold in memory:
// a state dict's pickle is a few hundred kilobytes even for large models.
const maxPickle = 1 << 30

// unpickle runs one pickle held in data, checked first by scanPickle, and
// returns its value and its length in bytes. Panics in the unpickler become
// errors.
func unpickle(data []byte, persistentLoad func(any) (any, error)) (v any, n int64, err error) {
	n, err = scanPickle(bufio.NewReader(bytes.NewReader(data)), int64(len(data)))
	if err != nil {
		return nil, n, err
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(data[:n]))
	u.FindClass = findClass
	u.PersistentLoad = persistentLoad
	v, err = u.Load()
	if err != nil {
		return nil, n, fmt.Errorf("unpickling: %v", err)
	}
	return v, n, nil
}
