package safetensors

import (
	"encoding/binary"
	"strings"
	"testing"
)

func TestCorruptFiles(t *testing.T) {
	data8 := make([]byte, 8)
	cases := []struct {
		name string
		file []byte
		want []string // substrings the error must contain
	}{
		{"empty", nil, []string{"shorter than"}},
		{"short", []byte{1, 2, 3}, []string{"shorter than"}},
		{"huge header length", func() []byte {
			b := make([]byte, 16)
			binary.LittleEndian.PutUint64(b, 1<<40)
			return b
		}(), []string{"exceeds"}},
		{"header past end", func() []byte {
			b := rawFile(`{}`, nil)
			binary.LittleEndian.PutUint64(b, 100)
			return b
		}(), []string{"truncated"}},
		{"not json", rawFile(`hello`, nil), []string{"not a JSON object"}},
		{"bad json", rawFile(`{"a":`, nil), []string{`"a"`, "bad header entry"}},
		{"bad json 2", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`, nil), []string{"header JSON"}},
		{"json array", rawFile(`[1,2]`, nil), []string{"not a JSON object"}},
		{"unknown dtype", rawFile(`{"w":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}`, data8),
			[]string{`"w"`, "unknown dtype"}},
		{"shape mismatch", rawFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, data8),
			[]string{`"w"`, "needs 12 bytes"}},
		{"missing field", rawFile(`{"w":{"dtype":"F32","shape":[2]}}`, data8),
			[]string{`"w"`, "data_offsets"}},
		{"offsets reversed", rawFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, data8),
			[]string{`"w"`, "invalid data_offsets"}},
		{"offsets out of range", rawFile(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, data8),
			[]string{`"w"`, "run past the end", "truncated"}},
		{"truncated data", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, data8),
			[]string{`"b"`, "truncated"}},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data8),
			[]string{`"b"`, "overlap", `"a"`}},
		{"gap", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data8),
			[]string{`"a"`, "gap"}},
		{"trailing bytes", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, data8),
			[]string{"8 bytes", "use 4"}},
		{"duplicate", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data8),
			[]string{"duplicate", `"a"`}},
		{"negative dim", rawFile(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, data8),
			[]string{`"a"`, "negative"}},
		{"overflowing shape", rawFile(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}`, data8),
			[]string{`"a"`, "too large"}},
		{"fractional dim", rawFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}`, data8),
			[]string{`"a"`}},
		{"bad metadata", rawFile(`{"__metadata__":{"k":1}}`, nil), []string{"__metadata__"}},
		{"trailing json", rawFile(`{} {}`, nil), []string{"trailing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, "bad.safetensors", c.file)
			f, err := Open(p)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded on a corrupt file")
			}
			msg := err.Error()
			if !strings.Contains(msg, p) {
				t.Errorf("error does not name the file: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Open("/nonexistent/x.safetensors")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/x.safetensors") {
		t.Errorf("got %v", err)
	}
}

func TestEmptyAndPaddedHeader(t *testing.T) {
	// A file with no tensors, and a header padded with spaces, are valid.
	for _, h := range []string{`{}`, `{}      `, `{"__metadata__":{"a":"b"}}  `} {
		p := writeTemp(t, "ok.safetensors", rawFile(h, nil))
		f, err := Open(p)
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		if f.Len() != 0 {
			t.Errorf("%q: %d tensors", h, f.Len())
		}
		f.Close()
	}
}

func TestTruncatedAfterOpen(t *testing.T) {
	// The file shrinks between Open and the read: the error names the tensor.
	w := NewWriter()
	w.AddFloat32("big", []int64{1000}, make([]float32, 1000))
	p := writeTemp(t, "x.safetensors", nil)
	if err := w.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := truncate(p, 100); err != nil {
		t.Fatal(err)
	}
	_, err = f.Float32("big")
	if err == nil || !strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), p) {
		t.Errorf("got %v", err)
	}
}
