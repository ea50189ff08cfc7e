package torchpt

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// pk writes protocol-2 pickles the way torch.save lays them out, so tests can
// build checkpoints with features the fixtures lack.
type pk struct{ bytes.Buffer }

func (p *pk) op(b ...byte) { p.Write(b) }
func (p *pk) proto()       { p.op(0x80, 2) }
func (p *pk) stop()        { p.op('.') }
func (p *pk) mark()        { p.op('(') }
func (p *pk) tuple()       { p.op('t') }

func (p *pk) str(s string) {
	p.op('X')
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
	p.Write(n[:])
	p.WriteString(s)
}

func (p *pk) int(v int64) {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		p.op('J')
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(int32(v)))
		p.Write(b[:])
		return
	}
	p.op(0x8a, 8) // LONG1
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	p.Write(b[:])
}

func (p *pk) global(module, name string) { p.WriteString("c" + module + "\n" + name + "\n") }

func (p *pk) ints(v []int64) {
	p.mark()
	for _, x := range v {
		p.int(x)
	}
	p.tuple()
}

// tview is a tensor to write: a view of storage key.
type tview struct {
	name          string
	key           string
	offset        int64
	shape, stride []int64
	param         bool   // wrap in torch._utils._rebuild_parameter
	rebuild       string // rebuild function, default _rebuild_tensor_v2
}

// tstorage is a storage to write.
type tstorage struct {
	class string // e.g. FloatStorage
	numel int64
	data  []byte
}

// tensor writes one _rebuild_tensor_v2(...) call; legacy adds the view
// metadata slot to the persistent id.
func (p *pk) tensor(v tview, st tstorage, legacy bool) {
	if v.param {
		p.global("torch._utils", "_rebuild_parameter")
		p.mark()
	}
	fn := v.rebuild
	if fn == "" {
		fn = "_rebuild_tensor_v2"
	}
	p.global("torch._utils", fn)
	p.mark()
	p.mark()
	p.str("storage")
	p.global("torch", st.class)
	p.str(v.key)
	p.str("cpu")
	p.int(st.numel)
	if legacy {
		p.op('N')
	}
	p.tuple()
	p.op('Q')
	p.int(v.offset)
	p.ints(v.shape)
	p.ints(v.stride)
	p.op(0x89) // False
	p.global("collections", "OrderedDict")
	p.op(')', 'R')
	p.tuple()
	p.op('R')
	if v.param {
		p.op(0x88) // True
		p.global("collections", "OrderedDict")
		p.op(')', 'R')
		p.tuple()
		p.op('R')
	}
}

// stateDict writes an OrderedDict of the tensors, with the _metadata
// attribute torch's state_dict() carries, optionally nested as {wrap: ...}.
func stateDictPickle(views []tview, storages map[string]tstorage, wrap string, legacy bool) []byte {
	var p pk
	p.proto()
	if wrap != "" {
		p.op('}')
		p.str(wrap)
	}
	p.global("collections", "OrderedDict")
	p.op(')', 'R')
	p.mark()
	for _, v := range views {
		p.str(v.name)
		p.tensor(v, storages[v.key], legacy)
	}
	p.op('u')
	// BUILD with {"_metadata": {}} as state_dict() does.
	p.op('}')
	p.str("_metadata")
	p.op('}', 's', 'b')
	if wrap != "" {
		p.op('s')
	}
	p.stop()
	return p.Bytes()
}

// writeZip writes a torch.save zip archive.
func writeZip(t testing.TB, path string, pkl []byte, storages map[string]tstorage, byteorder string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	add("archive/data.pkl", pkl)
	if byteorder != "" {
		add("archive/byteorder", []byte(byteorder))
	}
	keys := make([]string, 0, len(storages))
	for k := range storages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add("archive/data/"+k, storages[k].data)
	}
	add("archive/version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// legacyBytes writes the pre-zip torch.save format.
func legacyBytes(pkl []byte, storages map[string]tstorage) []byte {
	var out bytes.Buffer
	var p pk
	p.proto()
	// Magic number 0x1950a86a20f9469cfc6c as LONG1, little-endian.
	p.op(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19)
	p.stop()
	p.proto()
	p.op('M', 0xe9, 0x03) // 1001
	p.stop()
	p.proto()
	p.op('}')
	p.mark()
	p.str("protocol_version")
	p.op('M', 0xe9, 0x03)
	p.str("little_endian")
	p.op(0x88)
	p.op('u')
	p.stop()
	out.Write(p.Bytes())
	out.Write(pkl)
	keys := make([]string, 0, len(storages))
	for k := range storages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kp pk
	kp.proto()
	kp.op(']')
	kp.mark()
	for _, k := range keys {
		kp.str(k)
	}
	kp.op('e')
	kp.stop()
	out.Write(kp.Bytes())
	for _, k := range keys {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(storages[k].numel))
		out.Write(n[:])
		out.Write(storages[k].data)
	}
	return out.Bytes()
}

// f32Bytes encodes float32 values little-endian.
func f32Bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// testCheckpoint is a small state dict exercising strides, offsets, shared
// storage, parameters and non-F32 types. want gives the expected contents.
func testCheckpoint() (views []tview, storages map[string]tstorage, want map[string][]float32) {
	// Storage "0": 0..11 as F32.
	s0 := make([]float32, 12)
	for i := range s0 {
		s0[i] = float32(i)
	}
	// F16 storage "1": 1.0, -2.0, 0.5; BF16 storage "2": 1.0, 3.0.
	f16 := []byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38}
	bf16 := []byte{0x80, 0x3f, 0x40, 0x40}
	f64 := make([]byte, 16)
	binary.LittleEndian.PutUint64(f64, math.Float64bits(0.25))
	binary.LittleEndian.PutUint64(f64[8:], math.Float64bits(-8))
	storages = map[string]tstorage{
		"0": {class: "FloatStorage", numel: 12, data: f32Bytes(s0...)},
		"1": {class: "HalfStorage", numel: 3, data: f16},
		"2": {class: "BFloat16Storage", numel: 2, data: bf16},
		"3": {class: "DoubleStorage", numel: 2, data: f64},
	}
	views = []tview{
		{name: "full", key: "0", shape: []int64{3, 4}, stride: []int64{4, 1}},
		{name: "tied", key: "0", shape: []int64{3, 4}, stride: []int64{4, 1}, param: true},
		// Transposed view: [4,3] with strides (1,4).
		{name: "transposed", key: "0", shape: []int64{4, 3}, stride: []int64{1, 4}},
		// Second row as a vector: offset 4.
		{name: "row1", key: "0", offset: 4, shape: []int64{4}, stride: []int64{1}},
		// Every other element of row 2: offset 8, stride 2.
		{name: "strided", key: "0", offset: 8, shape: []int64{2}, stride: []int64{2}},
		// Expanded scalar: stride 0.
		{name: "expanded", key: "0", offset: 5, shape: []int64{2, 2}, stride: []int64{0, 0}},
		{name: "scalar", key: "0", offset: 11, shape: []int64{}, stride: []int64{}},
		{name: "half", key: "1", shape: []int64{3}, stride: []int64{1}},
		{name: "bf16", key: "2", shape: []int64{2}, stride: []int64{1}},
		{name: "f64", key: "3", shape: []int64{2}, stride: []int64{1}},
	}
	want = map[string][]float32{
		"full":       s0,
		"tied":       s0,
		"transposed": {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11},
		"row1":       {4, 5, 6, 7},
		"strided":    {8, 10},
		"expanded":   {5, 5, 5, 5},
		"scalar":     {11},
		"half":       {1, -2, 0.5},
		"bf16":       {1, 3},
		"f64":        {0.25, -8},
	}
	return views, storages, want
}

// checkContents compares every tensor of sd with want.
func checkContents(t *testing.T, sd *StateDict, want map[string][]float32) {
	t.Helper()
	if sd.Len() != len(want) {
		t.Errorf("%d tensors, want %d: %v", sd.Len(), len(want), sd.Names())
	}
	for name, w := range want {
		got, err := sd.Float32(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(got) != len(w) {
			t.Errorf("%s: %d values, want %d", name, len(got), len(w))
			continue
		}
		for i := range w {
			if got[i] != w[i] {
				t.Errorf("%s[%d] = %v, want %v (all: %v)", name, i, got[i], w[i], got)
				break
			}
		}
	}
}

func TestZipViewsAndTypes(t *testing.T) {
	views, storages, want := testCheckpoint()
	path := filepath.Join(t.TempDir(), "sd.pt")
	writeZip(t, path, stateDictPickle(views, storages, "", false), storages, "little")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sd, err := a.FindStateDict()
	if err != nil {
		t.Fatal(err)
	}
	checkContents(t, sd, want)
	if !sd.SameData("full", "tied") {
		t.Error("full and tied should share their data")
	}
	if sd.SameData("full", "transposed") {
		t.Error("full and transposed are different views")
	}
	if eq, err := sd.Equal("full", "tied"); !eq || err != nil {
		t.Errorf("Equal(full, tied) = %v, %v", eq, err)
	}
	info, _ := sd.Info("transposed")
	if !equalInts(info.Shape, []int64{4, 3}) || info.DType != "F32" {
		t.Errorf("info %+v", info)
	}
	if info, _ := sd.Info("half"); info.DType != "F16" {
		t.Errorf("half dtype %s", info.DType)
	}
}

func TestNestedAndLegacy(t *testing.T) {
	views, storages, want := testCheckpoint()
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "nested.pth")
	writeZip(t, zipPath, stateDictPickle(views, storages, "model", false), storages, "")
	legacyPath := filepath.Join(dir, "legacy.pth")
	if err := os.WriteFile(legacyPath, legacyBytes(stateDictPickle(views, storages, "model", true), storages), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{zipPath, legacyPath} {
		a, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sd, err := a.FindStateDict()
		if err != nil {
			t.Fatal(err)
		}
		if sd.Where() != `["model"]` {
			t.Errorf("%s: found at %q", path, sd.Where())
		}
		checkContents(t, sd, want)
		a.Close()
		if _, err := sd.Float32("full"); err == nil {
			t.Errorf("%s: read after Close succeeded", path)
		}
	}
}

func TestBigEndian(t *testing.T) {
	storages := map[string]tstorage{
		"0": {class: "FloatStorage", numel: 2, data: []byte{0x3f, 0x80, 0, 0, 0xc0, 0, 0, 0}},
	}
	views := []tview{{name: "w", key: "0", shape: []int64{2}, stride: []int64{1}}}
	path := filepath.Join(t.TempDir(), "be.pt")
	writeZip(t, path, stateDictPickle(views, storages, "", false), storages, "big")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sd, err := a.FindStateDict()
	if err != nil {
		t.Fatal(err)
	}
	checkContents(t, sd, map[string][]float32{"w": {1, -2}})
}

func TestUnsupportedAndOthers(t *testing.T) {
	storages := map[string]tstorage{
		"0": {class: "FloatStorage", numel: 1, data: f32Bytes(3)},
		"1": {class: "LongStorage", numel: 1, data: make([]byte, 8)},
	}
	views := []tview{
		{name: "ok", key: "0", shape: []int64{1}, stride: []int64{1}},
		{name: "q", key: "0", shape: []int64{1}, stride: []int64{1}, rebuild: "_rebuild_qtensor"},
		{name: "ids", key: "1", shape: []int64{1}, stride: []int64{1}},
	}
	path := filepath.Join(t.TempDir(), "u.pt")
	writeZip(t, path, stateDictPickle(views, storages, "", false), storages, "")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sd, err := a.FindStateDict()
	if err != nil {
		t.Fatal(err)
	}
	if o := sd.Others(); len(o) != 1 || o[0] != "q" {
		t.Errorf("Others() = %v", o)
	}
	if _, err := sd.Float32("q"); err == nil {
		t.Error("quantized tensor read")
	}
	if _, err := sd.Float32("ids"); err == nil {
		t.Error("int64 tensor read as float")
	}
	if raw, err := sd.Raw("ids"); err != nil || len(raw) != 8 {
		t.Errorf("Raw(ids) = %d bytes, %v", len(raw), err)
	}
	if _, err := sd.Float32("missing"); err == nil {
		t.Error("missing tensor read")
	}
}

// TestExtraObjects loads a training checkpoint whose other entries are
// arbitrary Python objects (argparse.Namespace, numbers, an optimizer state
// with tensors): they are inert, and the state dict is still found.
func TestExtraObjects(t *testing.T) {
	views, storages, want := testCheckpoint()
	var p pk
	p.proto()
	p.op('}')
	p.mark()
	p.str("args")
	p.global("argparse", "Namespace")
	p.op(')', 0x81) // NEWOBJ
	p.op('}')
	p.str("lr")
	p.op('G', 0x3f, 0x1a, 0x36, 0xe2, 0xeb, 0x1c, 0x43, 0x2d) // 1e-4
	p.op('s', 'b')                                            // BUILD
	p.str("epoch")
	p.op('K', 3)
	p.str("optimizer")
	p.op('}')
	p.str("exp_avg")
	p.tensor(views[0], storages[views[0].key], false)
	p.op('s')
	p.str("model")
	p.global("collections", "OrderedDict")
	p.op(')', 'R')
	p.mark()
	for _, v := range views {
		p.str(v.name)
		p.tensor(v, storages[v.key], false)
	}
	p.op('u')
	p.op('u')
	p.stop()
	path := filepath.Join(t.TempDir(), "train.pth")
	writeZip(t, path, p.Bytes(), storages, "")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sd, err := a.FindStateDict()
	if err != nil {
		t.Fatal(err)
	}
	if sd.Where() != `["model"]` {
		t.Errorf("found at %s", sd.Where())
	}
	checkContents(t, sd, want)
	if _, err := a.StateDict("args"); err == nil || !strings.Contains(err.Error(), "argparse.Namespace") {
		t.Errorf("StateDict(args): %v", err)
	}
}
