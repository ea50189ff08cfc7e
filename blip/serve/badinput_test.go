package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"blip/blip"
)

// bombPNG is a valid PNG signature and IHDR claiming w x h pixels,
// followed by a tiny IDAT: a decompression bomb as the header shows it.
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		c := append([]byte(typ), data...)
		b.Write(c)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(c))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// Bad input answers 4xx with a JSON {"error"} that says what is wrong,
// and the server keeps serving.
func TestServeBadInput(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 256 << 10, MaxPixels: 1 << 20}, fixtureOpts{index: true})
	png := readFile(t, filepath.Join(imagesDir, "chelsea.png")) // 240 KB, under the body limit
	big := readFile(t, astronaut)                               // 790 KB, over it
	b64 := base64.StdEncoding.EncodeToString(readFile(t, smallJPEG))
	form := func(img []byte, fields map[string][]string) (io.Reader, string) { return multipartBody(t, img, fields) }
	type req struct {
		name, method, path, ct string
		body                   func() io.Reader
		status                 int
		want                   []string
	}
	raw := func(b []byte) func() io.Reader { return func() io.Reader { return bytes.NewReader(b) } }
	js := func(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }
	mp, mpct := form(png, map[string][]string{"promt": {"x"}})
	mpq, mpqct := form(png, nil)
	_ = mpq
	cases := []req{
		{"non-image bytes", "POST", "/v1/caption", "image/png", raw([]byte("hello, this is not an image")), 400, []string{"not a PNG, JPEG or GIF"}},
		{"empty body", "POST", "/v1/caption", "image/png", raw(nil), 400, []string{"no image"}},
		{"truncated PNG", "POST", "/v1/caption", "image/png", raw(png[:len(png)/2]), 400, []string{"cannot decode"}},
		{"truncated JPEG", "POST", "/v1/caption", "image/jpeg", raw(readFile(t, smallJPEG)[:300]), 400, []string{"cannot decode"}},
		{"decompression bomb", "POST", "/v1/caption", "image/png", raw(bombPNG(100000, 100000)), 413, []string{"pixel limit"}},
		{"bomb over the server limit only", "POST", "/v1/caption", "image/png", raw(bombPNG(2000, 2000)), 413, []string{"pixel limit"}},
		{"oversized body", "POST", "/v1/caption", "image/png", raw(big), 413, []string{"limit"}},
		{"oversized JSON", "POST", "/v1/caption", "application/json", js(`{"image":"` + strings.Repeat("A", 300<<10) + `"}`), 413, []string{"limit"}},
		{"oversized multipart", "POST", "/v1/caption", "", nil, 413, []string{"limit"}},
		{"unknown JSON field", "POST", "/v1/caption", "application/json", js(`{"image":"` + b64 + `","num_beam":3}`), 400, []string{"unknown field", "num_beam"}},
		{"unknown form field", "POST", "/v1/caption", mpct, func() io.Reader { return mp }, 400, []string{"unknown field", "promt"}},
		{"unknown query parameter", "POST", "/v1/caption?beams=2", mpqct, func() io.Reader { r, _ := form(png, nil); return r }, 400, []string{"unknown field", "beams"}},
		{"invalid JSON", "POST", "/v1/caption", "application/json", js(`{"image": `), 400, []string{"invalid JSON"}},
		{"JSON of the wrong type", "POST", "/v1/caption", "application/json", js(`{"image":"` + b64 + `","num_beams":"three"}`), 400, []string{"num_beams"}},
		{"form value of the wrong type", "POST", "/v1/caption?num_beams=three", "image/jpeg", raw(readFile(t, smallJPEG)), 400, []string{"num_beams", "integer"}},
		{"bad base64", "POST", "/v1/caption", "application/json", js(`{"image":"%%%not base64"}`), 400, []string{"base64"}},
		{"wrong content type", "POST", "/v1/caption", "text/plain", raw(png), 415, []string{"Content-Type"}},
		{"form-urlencoded", "POST", "/v1/caption", "application/x-www-form-urlencoded", js("image=abc"), 415, []string{"Content-Type"}},
		{"no content type", "POST", "/v1/caption", "", raw(png), 415, []string{"Content-Type"}},
		{"multipart without boundary", "POST", "/v1/caption", "multipart/form-data", raw(png), 400, []string{"boundary"}},
		{"too many beams", "POST", "/v1/caption?num_beams=100", "image/png", raw(png), 400, []string{"num_beams"}},
		{"too long generation", "POST", "/v1/caption?max_new_tokens=10000", "image/png", raw(png), 400, []string{"max_new_tokens", "limit"}},
		{"negative generation", "POST", "/v1/caption?max_new_tokens=-1", "image/png", raw(png), 400, []string{"max_new_tokens"}},
		{"sampling with beams", "POST", "/v1/caption?do_sample=true&num_beams=2", "image/png", raw(png), 400, []string{"do_sample"}},
		{"bad top_p", "POST", "/v1/caption?do_sample=1&top_p=2", "image/png", raw(png), 400, []string{"top_p"}},
		{"bad temperature", "POST", "/v1/caption?do_sample=1&temperature=0", "image/png", raw(png), 400, []string{"temperature"}},
		{"prompt too long", "POST", "/v1/caption", "application/json", js(`{"image":"` + b64 + `","prompt":"` + strings.Repeat("cat ", 80) + `"}`), 400, []string{"prompt", "tokens"}},
		{"missing question", "POST", "/v1/vqa", "application/json", js(`{"image":"` + b64 + `"}`), 400, []string{"question is required"}},
		{"blank question", "POST", "/v1/vqa", "application/json", js(`{"image":"` + b64 + `","question":"   "}`), 400, []string{"question is required"}},
		{"vqa without image", "POST", "/v1/vqa", "application/json", js(`{"question":"what?"}`), 400, []string{"no image"}},
		{"empty candidate", "POST", "/v1/vqa", "application/json", js(`{"image":"` + b64 + `","question":"what?","candidates":["a",""]}`), 400, []string{"candidate 1"}},
		{"itm without texts", "POST", "/v1/itm", "application/json", js(`{"image":"` + b64 + `"}`), 400, []string{"texts"}},
		{"itm with an empty text", "POST", "/v1/itm", "application/json", js(`{"image":"` + b64 + `","texts":["a cat",""]}`), 400, []string{"texts[1]"}},
		{"itm with too many texts", "POST", "/v1/itm", "application/json", js(`{"image":"` + b64 + `","texts":[` + strings.Repeat(`"a",`, 64) + `"a"]}`), 400, []string{"at most 64"}},
		{"embed with nothing", "POST", "/v1/embed", "application/json", js(`{}`), 400, []string{"image or a text"}},
		{"embed with both", "POST", "/v1/embed", "application/json", js(`{"image":"` + b64 + `","text":"a cat"}`), 400, []string{"not both"}},
		{"classify without labels", "POST", "/v1/classify", "application/json", js(`{"image":"` + b64 + `"}`), 400, []string{"candidate_labels"}},
		{"classify template without {}", "POST", "/v1/classify", "application/json", js(`{"image":"` + b64 + `","candidate_labels":["cat"],"hypothesis_template":"a photo"}`), 400, []string{"{}"}},
		{"search without q", "GET", "/v1/search", "", nil, 400, []string{"q"}},
		{"search with bad k", "GET", "/v1/search?q=cat&k=0", "", nil, 400, []string{"k 0"}},
		{"search with huge k", "GET", "/v1/search?q=cat&k=1000000", "", nil, 400, []string{"k 1000000"}},
		{"search with unknown parameter", "GET", "/v1/search?q=cat&limit=3", "", nil, 400, []string{"limit"}},
		{"search with bad rerank", "GET", "/v1/search?q=cat&rerank=-2", "", nil, 400, []string{"rerank"}},
		{"GET on a POST endpoint", "GET", "/v1/itm", "", nil, 405, []string{"POST"}},
		{"POST on a GET endpoint", "POST", "/v1/search?q=cat", "application/json", js("{}"), 405, []string{"GET"}},
	}
	for _, c := range cases {
		var body io.Reader
		if c.body != nil {
			body = c.body()
		}
		ct := c.ct
		if c.name == "oversized multipart" {
			body, ct = form(big, nil)
		}
		code, b := f.do(t, c.method, c.path, ct, body)
		wantError(t, c.name, code, b, c.status, c.want...)
	}
	// Still serving.
	f.captionVia(t, "/v1/caption", "image/png", bytes.NewReader(png))
	if code, _ := f.do(t, "GET", "/healthz", "", nil); code != 200 {
		t.Errorf("healthz after bad input: %d", code)
	}
}

// Mutated and truncated images never give a 5xx or take the server down.
func TestServeMutatedImages(t *testing.T) {
	f := newFixture(t, Config{MaxPixels: 4 << 20}, fixtureOpts{noRetrieval: true, noVQA: true})
	rng := rand.New(rand.NewPCG(1, 2))
	seeds := [][]byte{readFile(t, smallJPEG), readFile(t, filepath.Join("..", "..", "testdata", "preprocess", "g8.png")), readFile(t, filepath.Join("..", "..", "testdata", "preprocess", "jprog.jpg"))}
	n := 120
	if testing.Short() {
		n = 30
	}
	counts := map[int]int{}
	for i := 0; i < n; i++ {
		b := append([]byte(nil), seeds[i%len(seeds)]...)
		switch i % 3 {
		case 0: // flip bytes
			for k := 0; k < 1+rng.IntN(8); k++ {
				b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
			}
		case 1: // truncate
			b = b[:rng.IntN(len(b))]
		case 2: // overwrite a run
			j := rng.IntN(len(b))
			for k := j; k < min(len(b), j+16); k++ {
				b[k] = byte(rng.IntN(256))
			}
		}
		code, body := f.do(t, "POST", "/v1/caption?max_new_tokens=3", "application/octet-stream", bytes.NewReader(b))
		counts[code]++
		if code >= 500 || (code != 200 && code/100 != 4) {
			t.Errorf("mutation %d: %d %s", i, code, body)
		}
	}
	t.Logf("status counts: %v", counts)
	if code, _ := f.do(t, "GET", "/healthz", "", nil); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

// A model folder that fails to load stops startup with a message naming it.
func TestServeModelLoadErrors(t *testing.T) {
	be, ms := loadModels(t, fixtureOpts{noVQA: true, noRetrieval: true})
	ms.Close()
	defer be.Close()
	missing := filepath.Join(t.TempDir(), "nope")
	capDir := filepath.Join(tinyDir, "tiny-captioning")
	empty := t.TempDir()
	noWeights := t.TempDir()
	copyFile(t, filepath.Join(capDir, "config.json"), filepath.Join(noWeights, "config.json"))
	for _, c := range []struct {
		d    ModelDirs
		want []string
	}{
		{ModelDirs{}, []string{"no model"}},
		{ModelDirs{Caption: missing}, []string{missing}},
		{ModelDirs{Caption: empty}, []string{empty, "config.json"}},
		{ModelDirs{Caption: noWeights}, []string{noWeights}},
		{ModelDirs{Retrieval: capDir}, []string{capDir, blip.KindCaptioning.String(), blip.KindRetrieval.String()}},
		{ModelDirs{Any: capDir, Caption: capDir}, []string{"both"}},
	} {
		ms, err := LoadModels(be, c.d)
		if err == nil {
			ms.Close()
			t.Errorf("%+v: loaded", c.d)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v does not mention %q", c.d, err, w)
			}
		}
	}
	// An index needs a retrieval model of its width.
	be2, ms2 := loadModels(t, fixtureOpts{noVQA: true})
	defer be2.Close()
	defer ms2.Close()
	ix := buildIndex(t, be2, ms2.Retrieval)
	if _, err := New(be2, &Models{Caption: ms2.Caption}, ix, Config{Log: io.Discard}); err == nil || !strings.Contains(err.Error(), "retrieval") {
		t.Errorf("index without a retrieval model: %v", err)
	}
	ix.Dim = 7
	if _, err := New(be2, ms2, ix, Config{Log: io.Discard}); err == nil || !strings.Contains(err.Error(), "7-wide") {
		t.Errorf("index of another width: %v", err)
	}
	_ = http.StatusOK
}
