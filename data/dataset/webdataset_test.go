package dataset

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readAll(t *testing.T, d Dataset) ([]Sample, Source) {
	t.Helper()
	src, err := d.Open()
	if err != nil {
		t.Fatal(err)
	}
	var out []Sample
	for {
		s, err := src.Next()
		if err == io.EOF {
			return out, src
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
}

func makeShards(t *testing.T, dir string) {
	img := pngBytes(t, 9)
	writeTar(t, filepath.Join(dir, "shards", "00000.tar"), []member{
		{"000000000.jpg", img},
		{"000000000.txt", []byte("first caption")},
		{"000000000.json", []byte(`{"caption": "ignored", "key": "000000000"}`)},
		{"000000001.png", img},
		{"000000001.json", []byte(`{"caption": "from json"}`)},
		{"000000002.txt", []byte("no image")},
		{"000000003.jpg", img}, // no caption
		{"000000004.webp", img},
		{"000000004.json", []byte(`{bad`)},
	})
	writeTar(t, filepath.Join(dir, "shards", "00001.tar"), []member{
		{"sub/000000010.jpg", img},
		{"sub/000000010.txt", []byte("second shard")},
		{"000000011.json", []byte(`{"caption": "x"}`)},
		{"000000011.jpeg", img},
	})
}

func TestWebDataset(t *testing.T) {
	dir := t.TempDir()
	makeShards(t, dir)
	w, err := NewWebDataset(filepath.Join(dir, "shards", "{00000..00001}.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Shards) != 2 {
		t.Fatalf("shards %q", w.Shards)
	}
	got, src := readAll(t, w)
	var keys []string
	for _, s := range got {
		keys = append(keys, s.Key+"|"+s.Ext+"|"+s.Caption)
	}
	want := []string{
		"00000.tar/000000000|jpg|first caption",
		"00000.tar/000000001|png|from json",
		"00001.tar/sub/000000010|jpg|second shard",
		"00001.tar/000000011|jpeg|x",
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("got %q", keys)
	}
	for i, s := range got {
		if s.Index != i || len(s.ImageBytes) == 0 || s.Path != "" {
			t.Errorf("sample %d: index %d, %d bytes", i, s.Index, len(s.ImageBytes))
		}
	}
	st := src.(StatsReporter).Stats()
	if st.Seen != 7 || st.Skipped != 3 || st.Reasons["missing image"] != 1 || st.Reasons["missing caption"] != 1 || st.Reasons["bad json"] != 1 {
		t.Errorf("stats: %v", st)
	}
	if !strings.Contains(strings.Join(st.Examples, "\n"), "00000.tar/000000002: missing image") {
		t.Errorf("examples: %q", st.Examples)
	}
	// Reopening gives the same deterministic sequence.
	again, _ := readAll(t, w)
	if !reflect.DeepEqual(again, got) {
		t.Error("second pass differs")
	}
}

func TestWebDatasetErrors(t *testing.T) {
	dir := t.TempDir()
	makeShards(t, dir)
	w, _ := NewWebDataset(filepath.Join(dir, "shards", "{00000,00005}.tar"))
	src, _ := w.Open()
	n := 0
	var err error
	for {
		_, err = src.Next()
		if err != nil {
			break
		}
		n++
	}
	if n != 2 || err == io.EOF || !strings.Contains(err.Error(), "00005.tar") {
		t.Errorf("missing shard: n=%d err=%v", n, err)
	}
	// Truncated shard: error names the shard.
	b, _ := os.ReadFile(filepath.Join(dir, "shards", "00000.tar"))
	bad := filepath.Join(dir, "trunc.tar")
	writeFile(t, bad, b[:530])
	w, _ = NewWebDataset(bad)
	src, _ = w.Open()
	for err = nil; err == nil; _, err = src.Next() {
	}
	if err == io.EOF || !strings.Contains(err.Error(), "trunc.tar") {
		t.Errorf("truncated shard: %v", err)
	}
	if _, err := NewWebDataset("x{1..2"); err == nil {
		t.Error("bad pattern should fail")
	}
}
