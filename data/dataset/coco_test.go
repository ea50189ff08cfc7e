package dataset

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The committed fixtures of the COCO / Flickr30k / VQA readers.
var datasetsDir = filepath.Join("..", "..", "testdata", "datasets")

func fixture(name string) string { return filepath.Join(datasetsDir, name) }

// wantErr checks that err names the file and contains every fragment.
func wantErr(t *testing.T, what string, err error, file string, frags ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	for _, f := range append([]string{file}, frags...) {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("%s: error %q does not contain %q", what, err, f)
		}
	}
}

func TestReadCaptionTrainCOCO(t *testing.T) {
	es, err := ReadCaptionTrain(fixture("coco_karpathy_train.json"), "/coco", JSONOptions{MaxWords: 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 {
		t.Fatalf("%d entries", len(es))
	}
	if es[0].Path != filepath.Join("/coco", "val2014/COCO_val2014_000000522418.jpg") || es[0].ImageID != "coco_522418" {
		t.Errorf("entry 0: %+v", es[0])
	}
	// pre_caption: lower case, punctuation to spaces, runs collapsed.
	if got := es[0].Captions[0]; got != "a woman wearing a net on her head cutting a cake" {
		t.Errorf("caption 0: %q", got)
	}
	if got := es[3].Captions[0]; got != "a man riding a motor bike on a dirt road on the countryside" {
		t.Errorf("caption 3: %q", got)
	}
	if es[3].ImageID != "391895" || es[3].Index != 3 {
		t.Errorf("entry 3: %+v", es[3])
	}
	if got := IDIndex(es); !reflect.DeepEqual(got, map[string]int{"coco_522418": 0, "coco_184613": 1, "391895": 2}) {
		t.Errorf("IDIndex %v", got)
	}
	if p := NewPairs(es); p.Len() != 4 {
		t.Errorf("pairs: %d", p.Len())
	}
}

func TestReadRetrievalEvalCOCO(t *testing.T) {
	r, err := ReadRetrievalEval(fixture("coco_karpathy_test.json"), "/coco", RetrievalMaxWords)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 3 || len(r.Texts) != 13 {
		t.Fatalf("%d images, %d texts", r.Len(), len(r.Texts))
	}
	wantT2I := []int{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2}
	wantI2T := [][]int{{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9, 10}, {11, 12}}
	if !reflect.DeepEqual(r.Txt2Img, wantT2I) || !reflect.DeepEqual(r.Img2Txt, wantI2T) {
		t.Errorf("txt2img %v img2txt %v", r.Txt2Img, r.Img2Txt)
	}
	for ti, ii := range r.Txt2Img {
		found := false
		for _, t2 := range r.Img2Txt[ii] {
			found = found || t2 == ti
		}
		if !found {
			t.Errorf("text %d not listed under image %d", ti, ii)
		}
	}
	if r.Texts[0] != "a man with a red helmet on a small moped on a dirt road" || r.Texts[8] != "girl blowing out the candle on an ice-cream" {
		t.Errorf("texts %q", r.Texts)
	}
	// The image view: one sample per image with all its captions.
	s, err := r.At(1)
	if err != nil || s.Path != filepath.Join("/coco", "val2014/COCO_val2014_000000060623.jpg") || len(s.Captions) != 6 || s.Ext != "jpg" {
		t.Errorf("At(1) = %+v, %v", s, err)
	}
	// Truncation to max_words.
	r, err = ReadRetrievalEval(fixture("coco_karpathy_test.json"), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if r.Texts[3] != "a dirt path with a young person on a motor" {
		t.Errorf("truncated: %q", r.Texts[3])
	}
	if r.Entries[0].Path != "val2014/COCO_val2014_000000391895.jpg" {
		t.Errorf("no root: %q", r.Entries[0].Path)
	}
	// maxWords <= 0 cleans without truncating.
	r, err = ReadRetrievalEval(fixture("coco_karpathy_test.json"), "", 0)
	if err != nil || !strings.HasSuffix(r.Texts[3], "cloud-wreathed mountains") || strings.HasSuffix(r.Texts[3], " ") {
		t.Errorf("untruncated: %q %v", r.Texts[3], err)
	}
	if _, err := NewRetrieval([]Entry{{Image: "a.jpg"}}); err == nil {
		t.Error("entry without captions: no error")
	}
}

func TestCocoCaptionEval(t *testing.T) {
	es, err := ReadCocoCaptionEval(fixture("coco_karpathy_test.json"), "/coco", JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range es {
		ids = append(ids, e.ImageID)
	}
	if !reflect.DeepEqual(ids, []string{"391895", "60623", "483108"}) {
		t.Errorf("ids %q", ids)
	}
	refs := CaptionReferences(es)
	if len(refs) != 3 || len(refs["60623"]) != 6 || refs["483108"][0] != "A man on a bicycle riding next to a train" {
		t.Errorf("refs %q", refs)
	}
	gt, err := ReadCocoCaptionGT(fixture("coco_karpathy_test_gt.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(gt) != 3 || len(gt["391895"]) != 2 || gt["391895"][1] != refs["391895"][1] {
		t.Errorf("gt %q", gt)
	}
	for _, c := range []struct {
		image string
		id    int64
		ok    bool
	}{
		{"val2014/COCO_val2014_000000391895.jpg", 391895, true},
		{"COCO_train2014_000000000009.jpg", 9, true},
		{"a/b/123.jpg", 123, true},
		{"x/jp_5.jpg", 5, true}, // str.strip(".jpg") also eats leading j, p
		{"a/b.png", 0, false},
		{"a/COCO_val2014_.jpg", 0, false},
		{"a/", 0, false},
	} {
		id, err := CocoImageID(c.image)
		if (err == nil) != c.ok || id != c.id {
			t.Errorf("CocoImageID(%q) = %d, %v", c.image, id, err)
		}
	}
}

func TestReadFlickr(t *testing.T) {
	es, err := ReadFlickrTrain(fixture("flickr30k_train.json"), "/f30k", JSONOptions{MaxWords: 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 || es[1].Captions[0] != "two young, white males are outside near many bushes" {
		t.Errorf("entries %+v", es)
	}
	if got := IDIndex(es); !reflect.DeepEqual(got, map[string]int{"0": 0, "1": 1}) {
		t.Errorf("IDIndex %v", got)
	}
	r, err := ReadFlickrRetrievalEval(fixture("flickr30k_test.json"), "/f30k", RetrievalMaxWords)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 || len(r.Texts) != 10 || r.Txt2Img[9] != 1 || !reflect.DeepEqual(r.Img2Txt[1], []int{5, 6, 7, 8, 9}) {
		t.Errorf("retrieval %d %q %v %v", r.Len(), r.Texts, r.Txt2Img, r.Img2Txt)
	}
	if r.Texts[7] != "a boston terrier is running in the grass" {
		t.Errorf("text 7 %q", r.Texts[7])
	}
	if r.Entries[0].Path != filepath.Join("/f30k", "flickr30k-images/1007129816.jpg") {
		t.Errorf("path %q", r.Entries[0].Path)
	}
}

func TestCaptionReadersErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		f := filepath.Join(dir, name)
		writeFile(t, f, []byte(body))
		return f
	}
	f := write("t1.json", `[{"image": "a.jpg", "caption": "x", "image_id": 1}, {"image": "b.jpg", "caption": ["x"], "image_id": 2}]`)
	_, err := ReadCaptionTrain(f, dir, JSONOptions{})
	wantErr(t, "train list caption", err, f, "entry 1", `"caption" is not a string`)
	f = write("t2.json", `[{"image": "a.jpg", "caption": "x"}]`)
	_, err = ReadCaptionTrain(f, dir, JSONOptions{})
	wantErr(t, "train no image_id", err, f, "entry 0", `missing "image_id"`)
	f = write("t3.json", `[{"image": "a.jpg", "image_id": 3}]`)
	_, err = ReadCaptionTrain(f, dir, JSONOptions{})
	wantErr(t, "train no caption", err, f, "entry 0", `missing "caption"`)
	f = write("t4.json", `[{"image": 7, "caption": "x", "image_id": 3}]`)
	_, err = ReadCaptionTrain(f, dir, JSONOptions{})
	wantErr(t, "train bad image", err, f, "entry 0", `"image"`)
	f = write("t5.json", `{"image": "a.jpg"}`)
	_, err = ReadCaptionTrain(f, dir, JSONOptions{})
	wantErr(t, "not a list", err, f, "not a JSON list")
	f = write("t6.json", `[3]`)
	_, err = ReadCaptionTrain(f, dir, JSONOptions{})
	wantErr(t, "not an object", err, f, "entry 0", "not a JSON object")

	f = write("e1.json", `[{"image": "a.jpg", "caption": ["x"]}, {"image": "b.jpg", "caption": "x"}]`)
	_, err = ReadRetrievalEval(f, dir, 30)
	wantErr(t, "eval string caption", err, f, "entry 1", `"caption" is not a list`)
	f = write("e2.json", `[{"image": "a.jpg", "caption": []}]`)
	_, err = ReadRetrievalEval(f, dir, 30)
	wantErr(t, "eval empty list", err, f, "entry 0", `empty "caption" list`)
	f = write("e3.json", `[{"image": "a.jpg", "caption": ["x", null]}]`)
	_, err = ReadCaptionEval(f, dir, JSONOptions{})
	wantErr(t, "eval null caption", err, f, "entry 0", `"caption"[1]`)
	f = write("e4.json", `[{"image": "val2014/COCO_val2014_000000000001.jpg", "caption": ["x"]}, {"image": "b.png", "caption": ["x"]}]`)
	_, err = ReadCocoCaptionEval(f, dir, JSONOptions{})
	wantErr(t, "coco id", err, f, "entry 1", `"b.png"`)
	_, err = ReadCaptionEval(filepath.Join(dir, "missing.json"), dir, JSONOptions{})
	wantErr(t, "missing file", err, "missing.json")

	f = write("g1.json", `{"annotations": [{"image_id": 1, "caption": "x"}, {"image_id": 2}]}`)
	_, err = ReadCocoCaptionGT(f)
	wantErr(t, "gt no caption", err, f, "annotation 1", `missing "caption"`)
	f = write("g2.json", `{"annotations": [{"caption": "x"}]}`)
	_, err = ReadCocoCaptionGT(f)
	wantErr(t, "gt no image_id", err, f, "annotation 0", `missing "image_id"`)
	f = write("g3.json", `{"images": []}`)
	_, err = ReadCocoCaptionGT(f)
	wantErr(t, "gt no annotations", err, f, `missing "annotations"`)
	f = write("g5.json", `{"annotations": 3}`)
	_, err = ReadCocoCaptionGT(f)
	wantErr(t, "gt annotations not a list", err, f, `"annotations" is not a list`)
	f = write("g4.json", `[1]`)
	_, err = ReadCocoCaptionGT(f)
	wantErr(t, "gt not an object", err, f, "not a COCO annotation object")
}
