package safetensors

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestFloatDTypes(t *testing.T) {
	vals := []float64{0, 1, -2.5, 0.1, 65504, 1e-7, -3}
	f16 := []uint16{0x0000, 0x3c00, 0xc100, 0x2e66, 0x7bff, 0x0002, 0xc200}
	bf16 := []uint16{0x0000, 0x3f80, 0xc020, 0x3dcd, 0x477f, 0x33d7, 0xc040}
	var data []byte
	for _, h := range f16 {
		data = binary.LittleEndian.AppendUint16(data, h)
	}
	for _, h := range bf16 {
		data = binary.LittleEndian.AppendUint16(data, h)
	}
	for _, v := range vals {
		data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
	}
	hdr := `{"h":{"dtype":"F16","shape":[7],"data_offsets":[0,14]},` +
		`"b":{"dtype":"BF16","shape":[7],"data_offsets":[14,28]},` +
		`"d":{"dtype":"F64","shape":[7],"data_offsets":[28,84]}}`
	f, err := Open(writeTemp(t, "f.safetensors", rawFile(hdr, data)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []struct {
		name string
		tol  float64
	}{{"h", 1e-3}, {"b", 1e-2}, {"d", 0}} {
		got, err := f.Float32(c.name)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			want := float64(float32(v))
			if d := math.Abs(float64(got[i]) - want); d > c.tol*math.Max(1, math.Abs(want)) {
				t.Errorf("%s[%d] = %v, want about %v", c.name, i, got[i], want)
			}
		}
	}
}

func TestIntDTypes(t *testing.T) {
	var data []byte
	data = binary.LittleEndian.AppendUint32(data, uint32(0xffffffff)) // I32 -1
	data = binary.LittleEndian.AppendUint32(data, 7)
	data = binary.LittleEndian.AppendUint16(data, 0xfffe) // I16 -2
	data = append(data, 0xff, 1)                          // I8 -1, 1
	data = append(data, 200, 1)                           // U8
	data = append(data, 0, 0)                             // padding to even: BOOL
	data = binary.LittleEndian.AppendUint64(data, 1<<40)  // I64 too big for int32
	hdr := `{"i32":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},` +
		`"i16":{"dtype":"I16","shape":[1],"data_offsets":[8,10]},` +
		`"i8":{"dtype":"I8","shape":[2],"data_offsets":[10,12]},` +
		`"u8":{"dtype":"U8","shape":[2],"data_offsets":[12,14]},` +
		`"bool":{"dtype":"BOOL","shape":[2],"data_offsets":[14,16]},` +
		`"big":{"dtype":"I64","shape":[],"data_offsets":[16,24]}}`
	f, err := Open(writeTemp(t, "i.safetensors", rawFile(hdr, data)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	check := func(name string, want ...int64) {
		got, err := f.Int64(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", name, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", name, got, want)
			}
		}
	}
	check("i32", -1, 7)
	check("i16", -2)
	check("i8", -1, 1)
	check("u8", 200, 1)
	check("bool", 0, 0)
	check("big", 1<<40)
	if v, err := f.Int32("i32"); err != nil || v[0] != -1 || v[1] != 7 {
		t.Errorf("Int32: %v %v", v, err)
	}
	if _, err := f.Int32("big"); err == nil {
		t.Error("Int32 of 2^40 should fail")
	}
	info, _ := f.Info("big")
	if len(info.Shape) != 0 || info.NumElements() != 1 {
		t.Errorf("scalar info %+v", info)
	}
}
