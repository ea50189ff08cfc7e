package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the CLI in-process and returns what it printed on stdout.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	err = newApp().Run(append([]string{"blip"}, args...))
	w.Close()
	os.Stdout = old
	return <-done, err
}

// blip caption on image files gives transformers' greedy tokens for the
// tiny golden model (the whole path: decode, PIL-exact resize, ViT, decoder,
// search, detokenise), and reports unreadable files without losing the rest.
func TestCaptionCLI(t *testing.T) {
	tiny := filepath.Join("testdata", "hf-blip-tiny")
	bad := filepath.Join(t.TempDir(), "broken.png")
	if err := os.WriteFile(bad, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "--backend", "cpu", "caption", "--model", filepath.Join(tiny, "tiny-captioning"),
		"--max-length", "12", "--json", filepath.Join(tiny, "images"), bad)
	if err == nil || !strings.Contains(err.Error(), "1 of 5") {
		t.Errorf("want an error counting the unreadable image, got %v", err)
	}
	want := map[string][]int32{
		"astronaut.png": {135, 18, 71, 59, 11, 120, 62, 59, 12, 63, 88, 33},
		"rocket.jpg":    {135, 26, 26, 26, 87, 73, 73, 82, 36, 33, 73, 82},
	}
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var rec struct {
			Image    string  `json:"image"`
			Caption  string  `json:"caption"`
			TokenIDs []int32 `json:"token_ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		seen++
		if w, ok := want[filepath.Base(rec.Image)]; ok {
			if len(rec.TokenIDs) != len(w) {
				t.Fatalf("%s: %v, want %v", rec.Image, rec.TokenIDs, w)
			}
			for i := range w {
				if rec.TokenIDs[i] != w[i] {
					t.Fatalf("%s: %v, want %v", rec.Image, rec.TokenIDs, w)
				}
			}
		}
		if rec.Caption == "" {
			t.Errorf("%s: empty caption", rec.Image)
		}
	}
	if seen != 4 {
		t.Errorf("captioned %d images, want 4", seen)
	}
}

func TestCaptionCLIBadModel(t *testing.T) {
	_, err := run(t, "--backend", "cpu", "caption", "--model", t.TempDir(), filepath.Join("testdata", "hf-blip-tiny", "images", "rocket.jpg"))
	if err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("a folder without a model: %v", err)
	}
}
