package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeByte returns the sample's byte; multiples of 7 fail.
func decodeByte(s Sample) (int, error) {
	b, err := s.Image()
	if err != nil {
		return 0, err
	}
	v := int(b[0])
	// Jitter so that workers finish out of order.
	time.Sleep(time.Duration((v*37)%5) * 100 * time.Microsecond)
	if v%7 == 3 {
		return 0, errors.New("corrupt")
	}
	return v, nil
}

func collect(t *testing.T, l *Loader[int]) []int {
	t.Helper()
	var out []int
	for {
		it, err := l.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, it.Value)
	}
}

func run(t *testing.T, ds Dataset, opt Options) ([]int, Stats) {
	t.Helper()
	l, err := NewLoader(ds, decodeByte, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return collect(t, l), l.Stats()
}

func TestLoaderOrderIndependentOfWorkers(t *testing.T) {
	ds := intSource{50}
	base, st := run(t, ds, Options{Workers: 1, Epochs: 2})
	if len(base) != 2*(50-7) || st.Skipped != 14 || st.Reasons["decode failed"] != 14 || st.Seen != 100 {
		t.Fatalf("len %d stats %v", len(base), st)
	}
	for i, v := range base[:43] {
		if v%7 == 3 || (i > 0 && v <= base[i-1]) {
			t.Fatalf("order: %v", base)
		}
	}
	if !strings.Contains(st.Examples[0], "s003: corrupt") {
		t.Errorf("examples %q", st.Examples)
	}
	for _, w := range []int{2, 3, 8} {
		for _, pf := range []int{1, 4, 32} {
			got, _ := run(t, ds, Options{Workers: w, Prefetch: pf, Epochs: 2})
			if !reflect.DeepEqual(got, base) {
				t.Fatalf("workers %d prefetch %d: order differs", w, pf)
			}
			got, _ = run(t, streamOnly{ds}, Options{Workers: w, Prefetch: pf, Epochs: 2})
			if !reflect.DeepEqual(got, base) {
				t.Fatalf("stream workers %d prefetch %d: order differs", w, pf)
			}
		}
	}
}

func TestLoaderShuffle(t *testing.T) {
	ds := intSource{40}
	a, _ := run(t, ds, Options{Workers: 3, Shuffle: true, Seed: 1, Epochs: 2})
	b, _ := run(t, ds, Options{Workers: 1, Shuffle: true, Seed: 1, Epochs: 2})
	c, _ := run(t, ds, Options{Workers: 3, Shuffle: true, Seed: 2, Epochs: 2})
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed differs across worker counts")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds gave the same order")
	}
	n := len(a) / 2
	if reflect.DeepEqual(a[:n], a[n:]) {
		t.Error("epochs share a permutation")
	}
	plain, _ := run(t, ds, Options{})
	if reflect.DeepEqual(a[:n], plain) {
		t.Error("shuffle did nothing")
	}
	seen := map[int]int{}
	for _, v := range a {
		seen[v]++
	}
	if len(seen) != n {
		t.Errorf("epoch is not a permutation: %v", seen)
	}
	if _, err := NewLoader(streamOnly{ds}, decodeByte, Options{Shuffle: true}); err == nil {
		t.Error("shuffling a stream should fail")
	}
}

func TestLoaderResume(t *testing.T) {
	for _, tc := range []struct {
		name string
		ds   Dataset
		opt  Options
	}{
		{"indexed", intSource{30}, Options{Workers: 3, Epochs: 3, Shuffle: true, Seed: 5}},
		{"stream", streamOnly{intSource{30}}, Options{Workers: 2, Epochs: 2}},
	} {
		full, _ := run(t, tc.ds, tc.opt)
		for _, stop := range []int{0, 1, 10, 25, 26, 40, len(full) - 1, len(full)} {
			l, err := NewLoader(tc.ds, decodeByte, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for range stop {
				it, err := l.Next()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, it.Value)
			}
			pos := l.Position()
			l.Close()
			if _, err := l.Next(); err != io.EOF {
				t.Errorf("Next after Close: %v", err)
			}
			opt := tc.opt
			opt.Start = pos
			opt.Workers = 1
			rest, _ := run(t, tc.ds, opt)
			got = append(got, rest...)
			if !reflect.DeepEqual(got, full) {
				t.Fatalf("%s: resume after %d at %+v differs", tc.name, stop, pos)
			}
		}
	}
	if _, err := NewLoader(intSource{3}, decodeByte, Options{Start: Position{Index: -1}}); err == nil {
		t.Error("negative start should fail")
	}
}

func TestLoaderStrict(t *testing.T) {
	l, err := NewLoader(intSource{20}, decodeByte, Options{Workers: 4, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for {
		it, err := l.Next()
		if err != nil {
			if err == io.EOF || !strings.Contains(err.Error(), "s003") || !strings.Contains(err.Error(), "corrupt") {
				t.Fatalf("strict error: %v", err)
			}
			if _, err2 := l.Next(); err2 != err {
				t.Errorf("error not sticky: %v", err2)
			}
			break
		}
		got = append(got, it.Value)
	}
	if !reflect.DeepEqual(got, []int{0, 1, 2}) {
		t.Errorf("before failure: %v", got)
	}
}

func TestLoaderSourceError(t *testing.T) {
	dir := t.TempDir()
	makeShards(t, dir)
	w, _ := NewWebDataset(filepath.Join(dir, "shards", "{00000,00009}.tar"))
	l, _ := NewLoader(w, func(s Sample) (string, error) { return s.Caption, nil }, Options{Workers: 2})
	var n int
	for {
		_, err := l.Next()
		if err != nil {
			if err == io.EOF || !strings.Contains(err.Error(), "00009.tar") {
				t.Fatalf("got %v", err)
			}
			break
		}
		n++
	}
	if n != 2 {
		t.Errorf("got %d samples before the error", n)
	}
}

// End to end: JSON annotations with PNGs on disk, one missing and one
// corrupt image, decoded with image/png.
func TestLoaderJSONAndWebDataset(t *testing.T) {
	dir := t.TempDir()
	var ann strings.Builder
	ann.WriteString("[")
	for i := range 6 {
		if i > 0 {
			ann.WriteString(",")
		}
		fmt.Fprintf(&ann, `{"image": "img/%d.png", "caption": ["c%d a", "c%d b"]}`, i, i, i)
		switch i {
		case 2: // missing file
		case 4:
			writeFile(t, filepath.Join(dir, "img", "4.png"), []byte("not a png"))
		default:
			writeFile(t, filepath.Join(dir, "img", fmt.Sprintf("%d.png", i)), pngBytes(t, uint8(i)))
		}
	}
	ann.WriteString("]")
	writeFile(t, filepath.Join(dir, "ann.json"), []byte(ann.String()))
	p, err := ReadPairs(dir, JSONOptions{}, filepath.Join(dir, "ann.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := func(s Sample) (string, error) {
		b, err := s.Image()
		if err != nil {
			return "", err
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			return "", err
		}
		r, _, _, _ := img.At(0, 0).RGBA()
		return fmt.Sprintf("%d:%s", r>>8, s.Caption), nil
	}
	l, _ := NewLoader(p, dec, Options{Workers: 3})
	var got []string
	for {
		it, err := l.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, it.Value)
	}
	want := []string{"0:c0 a", "0:c0 b", "1:c1 a", "1:c1 b", "3:c3 a", "3:c3 b", "5:c5 a", "5:c5 b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
	if st := l.Stats(); st.Skipped != 4 || st.Seen != 12 {
		t.Errorf("stats %v", st)
	}

	makeShards(t, dir)
	w, _ := NewWebDataset(filepath.Join(dir, "shards", "{00000..00001}.tar"))
	l2, _ := NewLoader(w, dec, Options{Workers: 2, Epochs: 2})
	got = got[:0]
	for {
		it, err := l2.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, it.Value)
	}
	if len(got) != 8 || got[0] != "9:first caption" {
		t.Errorf("webdataset: %q", got)
	}
	if st := l2.Stats(); st.Seen != 8 || st.Skipped != 6 || st.Reasons["missing image"] != 2 {
		t.Errorf("webdataset stats %v", st)
	}
}
