package torchpt

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Entry is one float32 tensor to save.
type Entry struct {
	Name  string
	Shape []int64
	Data  []float32 // row-major, len = product of Shape
}

// WriteFile saves entries as a torch.save zip archive that torch.load reads
// as a dict of float32 tensors (nested as {wrap: dict} when wrap is not
// empty, as salesforce/BLIP checkpoints are). It writes a temporary file in
// the same folder and renames it over path, so path is never half written.
func WriteFile(path string, entries []Entry, wrap string) (err error) {
	for _, e := range entries {
		n := int64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return fmt.Errorf("torchpt: %s: tensor %q: negative dimension in %v", path, e.Name, e.Shape)
			}
			n *= d
		}
		if n != int64(len(e.Data)) {
			return fmt.Errorf("torchpt: %s: tensor %q: shape %v needs %d values, got %d", path, e.Name, e.Shape, n, len(e.Data))
		}
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("torchpt: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// torch names the archive's folder after the file.
	arch := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if arch == "" || strings.ContainsAny(arch, "/\\") {
		arch = "archive"
	}
	bw := bufio.NewWriter(tmp)
	zw := zip.NewWriter(bw)
	add := func(name string, data []byte) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: arch + "/" + name, Method: zip.Store})
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	if err := add("data.pkl", statePickle(entries, wrap)); err != nil {
		return fmt.Errorf("torchpt: writing %s: %w", path, err)
	}
	if err := add("byteorder", []byte("little")); err != nil {
		return fmt.Errorf("torchpt: writing %s: %w", path, err)
	}
	for i, e := range entries {
		buf := make([]byte, 4*len(e.Data))
		for j, v := range e.Data {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
		}
		if err := add("data/"+strconv.Itoa(i), buf); err != nil {
			return fmt.Errorf("torchpt: writing %s: %w", path, err)
		}
	}
	if err := add("version", []byte("3\n")); err != nil {
		return fmt.Errorf("torchpt: writing %s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("torchpt: writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("torchpt: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("torchpt: syncing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("torchpt: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("torchpt: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("torchpt: %w", err)
	}
	return nil
}

// pickler emits the few protocol-2 opcodes a state dict needs.
type pickler struct{ b []byte }

func (p *pickler) op(c ...byte) { p.b = append(p.b, c...) }

func (p *pickler) str(s string) {
	p.op('X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
}

func (p *pickler) int(v int64) {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		p.op('J')
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
		return
	}
	p.op(0x8a, 8) // LONG1, 8 bytes
	p.b = binary.LittleEndian.AppendUint64(p.b, uint64(v))
}

func (p *pickler) ints(v []int64) {
	p.op('(')
	for _, x := range v {
		p.int(x)
	}
	p.op('t')
}

func (p *pickler) global(module, name string) {
	p.b = append(p.b, "c"+module+"\n"+name+"\n"...)
}

// statePickle pickles {name: _rebuild_tensor_v2(storage i, 0, shape,
// contiguous stride, False, OrderedDict())} as torch does for a state dict.
func statePickle(entries []Entry, wrap string) []byte {
	var p pickler
	p.op(0x80, 2)
	if wrap != "" {
		p.op('}')
		p.str(wrap)
	}
	p.global("collections", "OrderedDict")
	p.op(')', 'R')
	if len(entries) > 0 {
		p.op('(')
		for i, e := range entries {
			p.str(e.Name)
			p.global("torch._utils", "_rebuild_tensor_v2")
			p.op('(', '(')
			p.str("storage")
			p.global("torch", "FloatStorage")
			p.str(strconv.Itoa(i))
			p.str("cpu")
			p.int(int64(len(e.Data)))
			p.op('t', 'Q')
			p.int(0)
			p.ints(e.Shape)
			stride := make([]int64, len(e.Shape))
			s := int64(1)
			for k := len(e.Shape) - 1; k >= 0; k-- {
				stride[k] = s
				s *= e.Shape[k]
			}
			p.ints(stride)
			p.op(0x89) // requires_grad=False
			p.global("collections", "OrderedDict")
			p.op(')', 'R', 't', 'R')
		}
		p.op('u')
	}
	if wrap != "" {
		p.op('s')
	}
	p.op('.')
	return p.b
}
