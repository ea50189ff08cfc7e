package torchpt

import (
	"path/filepath"
	"testing"
)

func TestWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	entries := []Entry{
		{Name: "a.weight", Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "scalar", Shape: []int64{}, Data: []float32{0.07}},
		{Name: "empty", Shape: []int64{0, 4}, Data: []float32{}},
	}
	for _, wrap := range []string{"", "model"} {
		path := filepath.Join(dir, "m"+wrap+".pth")
		if err := WriteFile(path, entries, wrap); err != nil {
			t.Fatal(err)
		}
		a, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sd, err := a.FindStateDict()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]float32{"a.weight": entries[0].Data, "scalar": {0.07}, "empty": {}}
		checkContents(t, sd, want)
		if info, _ := sd.Info("a.weight"); !equalInts(info.Shape, []int64{2, 3}) {
			t.Errorf("shape %v", info.Shape)
		}
		a.Close()
	}
	if err := WriteFile(filepath.Join(dir, "bad.pth"), []Entry{{Name: "x", Shape: []int64{3}, Data: []float32{1}}}, ""); err == nil {
		t.Error("shape/data mismatch accepted")
	}
}
