package torchpt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openAndReadAll opens data as a checkpoint file and reads every tensor; it
// returns the first error. It must never panic.
func openAndReadAll(t testing.TB, dir string, data []byte) error {
	path := filepath.Join(dir, "x.pt")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := Open(path)
	if err != nil {
		return err
	}
	defer a.Close()
	sd, err := a.FindStateDict()
	if err != nil {
		return err
	}
	for _, n := range sd.Names() {
		if _, err := sd.Raw(n); err != nil {
			return err
		}
	}
	return nil
}

func TestTruncatedZip(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(tinyDir, "tiny-captioning-bin", "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	step := len(data)/97 + 1
	for n := 0; n < len(data); n += step {
		err := openAndReadAll(t, dir, data[:n])
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(data))
		}
		if !strings.Contains(err.Error(), "x.pt") {
			t.Fatalf("error does not name the file: %v", err)
		}
	}
}

func TestCorruptedZip(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(tinyDir, "tiny-captioning-bin", "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	step := len(data)/211 + 1
	detected := 0
	for i := 0; i < len(data); i += step {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x5a
		if openAndReadAll(t, dir, bad) != nil {
			detected++
		}
	}
	// Every byte of the pickle and of the storages is covered by a CRC-32;
	// only flips in zip padding and unused header fields go unnoticed.
	if total := (len(data) + step - 1) / step; detected < total*9/10 {
		t.Errorf("only %d of %d corruptions detected", detected, total)
	}
}

func TestTruncatedLegacy(t *testing.T) {
	views, storages, _ := testCheckpoint()
	data := legacyBytes(stateDictPickle(views, storages, "model", true), storages)
	dir := t.TempDir()
	if err := openAndReadAll(t, dir, data); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n += 3 {
		if err := openAndReadAll(t, dir, data[:n]); err == nil {
			t.Fatalf("legacy file truncated to %d of %d bytes: no error", n, len(data))
		}
	}
	// Corrupt every byte of the pickles: errors or wrong values, never a panic.
	for i := 0; i < len(data); i += 2 {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0xff
		openAndReadAll(t, dir, bad)
	}
}

// TestCraftedViews checks that views reaching outside their storage, and
// storages larger than their entries, are errors.
func TestCraftedViews(t *testing.T) {
	cases := []struct {
		name string
		v    tview
		st   tstorage
		want string
	}{
		{"past end", tview{shape: []int64{5}, stride: []int64{1}}, tstorage{numel: 4}, "reaches element"},
		{"offset past end", tview{offset: 4, shape: []int64{1}, stride: []int64{1}}, tstorage{numel: 4}, "reaches element"},
		{"stride past end", tview{shape: []int64{2, 2}, stride: []int64{3, 1}}, tstorage{numel: 4}, "reaches element"},
		{"negative stride", tview{shape: []int64{2}, stride: []int64{-1}}, tstorage{numel: 4}, "negative"},
		{"rank mismatch", tview{shape: []int64{2}, stride: []int64{1, 1}}, tstorage{numel: 4}, "rank"},
		{"huge expand", tview{shape: []int64{1 << 40}, stride: []int64{0}}, tstorage{numel: 4}, "too large"},
		{"overflow", tview{shape: []int64{1 << 40, 1 << 40}, stride: []int64{0, 0}}, tstorage{numel: 4}, "too large"},
		{"storage bigger than entry", tview{shape: []int64{1}, stride: []int64{1}}, tstorage{numel: 5}, "holds"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.v.name, c.v.key = "w", "0"
			c.st.class = "FloatStorage"
			data := f32Bytes(1, 2, 3, 4)
			storages := map[string]tstorage{"0": {class: "FloatStorage", numel: c.st.numel, data: data}}
			path := filepath.Join(dir, c.name+".pt")
			writeZip(t, path, stateDictPickle([]tview{c.v}, storages, "", false), storages, "")
			a, err := Open(path)
			if err == nil {
				defer a.Close()
				var sd *StateDict
				if sd, err = a.StateDict(); err == nil {
					_, err = sd.Float32("w")
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestScanPickle(t *testing.T) {
	cases := map[string]struct {
		data string
		want string
	}{
		"unknown opcode":   {"\x80\x02\xff.", "unknown pickle opcode"},
		"huge unicode":     {"\x80\x02X\xff\xff\xff\x7f.", "declares"},
		"huge bytes8":      {"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.", "declares"},
		"huge frame":       {"\x80\x04\x95\xff\xff\xff\xff\x00\x00\x00\x00.", "frame"},
		"negative string":  {"\x80\x02T\xff\xff\xff\xff.", "negative"},
		"no stop":          {"\x80\x02}", "STOP"},
		"unterminated":     {"\x80\x02cmodule", "unterminated"},
		"empty":            {"", "STOP"},
		"short arg":        {"\x80\x02J\x01", "STOP"},
		"dict odd":         {"\x80\x02(K\x01d.", "malformed pickle"},
		"empty long1":      {"\x80\x02\x8a\x00.", "malformed pickle"},
		"setitems on list": {"\x80\x02](K\x01K\x02u.", "unpickling"},
	}
	for name, c := range cases {
		_, _, err := unpickle([]byte(c.data), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
	// A valid pickle followed by other bytes: only the pickle is consumed.
	v, n, err := unpickle([]byte("\x80\x02K\x07.trailing"), nil)
	if err != nil || n != 5 || v != 7 {
		t.Errorf("got %v, %d, %v", v, n, err)
	}
}

func TestNotACheckpoint(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"empty":      "",
		"text":       "hello world",
		"bad zip":    "PK\x03\x04garbage",
		"pickle int": "\x80\x02K\x07.",
	} {
		err := openAndReadAll(t, dir, []byte(data))
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzOpen feeds arbitrary bytes to Open and the readers: errors are fine,
// panics and hangs are not. `go test` runs the seeds only.
func FuzzOpen(f *testing.F) {
	views, storages, _ := testCheckpoint()
	f.Add(legacyBytes(stateDictPickle(views, storages, "model", true), storages))
	if data, err := os.ReadFile(filepath.Join(tinyDir, "tiny-captioning-original", "model_tiny_caption.pth")); err == nil {
		f.Add(data)
	}
	f.Add(stateDictPickle(views, storages, "", false))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		openAndReadAll(t, dir, data)
	})
}
