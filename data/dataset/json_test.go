package dataset

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadAnnotations(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "ann.json")
	writeFile(t, f, []byte(`[
	 {"image": "a/1.png", "caption": "A dog  running!", "image_id": 7},
	 {"image": "a/2.png", "caption": ["one cat", "two cats"], "image_id": "coco_2"},
	 {"image": "/abs/3.png", "caption": "x"}
	]`))
	es, err := ReadAnnotations(f, dir, JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 {
		t.Fatalf("got %d entries", len(es))
	}
	if es[0].Path != filepath.Join(dir, "a/1.png") || es[0].ImageID != "7" || !reflect.DeepEqual(es[0].Captions, []string{"A dog  running!"}) {
		t.Errorf("entry 0: %+v", es[0])
	}
	if es[1].ImageID != "coco_2" || len(es[1].Captions) != 2 {
		t.Errorf("entry 1: %+v", es[1])
	}
	if es[2].Path != "/abs/3.png" || es[2].ImageID != "/abs/3.png" {
		t.Errorf("entry 2: %+v", es[2])
	}

	// Training view: list captions expand to one pair each.
	p := NewPairs(es)
	if p.Len() != 4 {
		t.Fatalf("pairs: %d", p.Len())
	}
	var caps []string
	for i := range p.Len() {
		s, _ := p.At(i)
		caps = append(caps, s.Key+"|"+s.Caption)
	}
	want := []string{"a/1.png|A dog  running!", "a/2.png|one cat", "a/2.png|two cats", "/abs/3.png|x"}
	if !reflect.DeepEqual(caps, want) {
		t.Errorf("pairs %q", caps)
	}
	// Evaluation view keeps the grouping.
	g := &Grouped{Entries: es}
	s, _ := g.At(1)
	if g.Len() != 3 || !reflect.DeepEqual(s.Captions, []string{"one cat", "two cats"}) || s.Caption != "one cat" {
		t.Errorf("grouped: %+v", s)
	}
	if _, err := p.At(4); err == nil {
		t.Error("out of range At should fail")
	}

	// pre_caption.
	es, err = ReadAnnotations(f, dir, JSONOptions{MaxWords: 2})
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Captions[0] != "a dog" {
		t.Errorf("pre_caption: %q", es[0].Captions[0])
	}
	pp, err := ReadPairs(dir, JSONOptions{}, f, f)
	if err != nil || pp.Len() != 8 {
		t.Errorf("ReadPairs: %v %v", pp, err)
	}
}

func TestReadAnnotationsErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ body, want string }{
		{`{"image": "x"}`, "not a JSON list"},
		{`[{"image": "a", "caption": "c"}, {"caption": "c"}]`, `entry 1: missing "image"`},
		{`[{"image": 3, "caption": "c"}]`, `entry 0: "image" is not a string`},
		{`[{"image": "", "caption": "c"}]`, `entry 0: empty "image"`},
		{`[{"image": "a"}]`, `entry 0: missing "caption"`},
		{`[{"image": "a", "caption": []}]`, `entry 0: empty "caption" list`},
		{`[{"image": "a", "caption": ["x", 2]}]`, `entry 0: "caption"[1] is not a string`},
		{`[{"image": "a", "caption": {"x": 1}}]`, `entry 0: "caption" is neither`},
		{`[{"image": "a", "caption": "c"}, 5]`, `entry 1: not a JSON object`},
		{`[{"image": "a", "caption": "c", "image_id": [1]}]`, `entry 0: "image_id"`},
	}
	for i, c := range cases {
		f := filepath.Join(dir, "bad"+itoa(i)+".json")
		writeFile(t, f, []byte(c.body))
		_, err := ReadAnnotations(f, dir, JSONOptions{})
		if err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q naming the file", c.body, err, c.want)
		}
	}
	if _, err := ReadAnnotations(filepath.Join(dir, "missing.json"), dir, JSONOptions{}); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
	f := filepath.Join(dir, "nocap.json")
	writeFile(t, f, []byte(`[{"image": "a"}]`))
	es, err := ReadAnnotations(f, dir, JSONOptions{AllowNoCaption: true})
	if err != nil || len(es) != 1 || len(es[0].Captions) != 0 {
		t.Errorf("AllowNoCaption: %v %v", es, err)
	}
}

func TestFolder(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.png", "a.JPG", "c.gif", "d.jpeg", "notes.txt", "e.webp"} {
		writeFile(t, filepath.Join(dir, n), pngBytes(t, 1))
	}
	writeFile(t, filepath.Join(dir, "sub", "z.png"), pngBytes(t, 1))
	f, err := ReadFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.JPG", "b.png", "c.gif", "d.jpeg"}
	if !reflect.DeepEqual(f.Files, want) {
		t.Fatalf("files %q", f.Files)
	}
	s, _ := f.At(0)
	if s.Path != filepath.Join(dir, "a.JPG") || s.Ext != "jpg" || s.ImageID != "a" || s.Caption != "" {
		t.Errorf("sample %+v", s)
	}
	if b, err := s.Image(); err != nil || len(b) == 0 {
		t.Errorf("Image: %v", err)
	}
	if _, err := ReadFolder(filepath.Join(dir, "nope")); err == nil {
		t.Error("missing folder should fail")
	}
}

func TestIDIndex(t *testing.T) {
	es := []Entry{{ImageID: "9"}, {ImageID: "3"}, {ImageID: "9"}, {ImageID: "1"}}
	got := IDIndex(es)
	if !reflect.DeepEqual(got, map[string]int{"9": 0, "3": 1, "1": 2}) {
		t.Errorf("IDIndex %v", got)
	}
}
