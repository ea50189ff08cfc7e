package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"blip/blip/generate"
	"blip/data/safetensors"
)

var goldenTexts = []string{"a man in a white space suit", "a cat sitting on a table", "a cup of coffee", "a rocket on the launch pad"}

// onDevice runs fn on the server's device worker, as requests do.
func (f *fixture) onDevice(t testing.TB, fn func() error) {
	t.Helper()
	if err := f.srv.w.submit(context.Background(), &task{kind: "test", fn: fn}); err != nil {
		t.Fatal(err)
	}
}

// refCaption captions img with the model directly (one image, no batching).
func (f *fixture) refCaption(t testing.TB, img []byte, prompt string, edit func(*generate.Config)) string {
	t.Helper()
	l := f.models.Caption
	px, err := f.srv.pixels(l, img)
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.Model.CaptionConfig()
	edit(&cfg)
	var prompts [][]int32
	if prompt != "" {
		prompts = [][]int32{encode(l.Tok, prompt)}
	}
	var text string
	f.onDevice(t, func() error {
		out, err := l.Model.GenerateCaptions(f.be, px, 1, prompts, cfg)
		if err == nil {
			text = decode(l.Tok, out.Sequences[0][:out.Lengths[0]])
		}
		return err
	})
	return text
}

// captionVia posts a caption request and returns the caption.
func (f *fixture) captionVia(t testing.TB, path, ct string, body io.Reader) string {
	t.Helper()
	code, b := f.do(t, "POST", path, ct, body)
	return captionOf(t, code, b)
}

func captionOf(t testing.TB, code int, body []byte) string {
	t.Helper()
	if code != http.StatusOK {
		t.Fatalf("caption: %d %s", code, body)
	}
	var out []GeneratedText
	if err := json.Unmarshal(body, &out); err != nil || len(out) != 1 {
		t.Fatalf("caption: %v: %s", err, body)
	}
	return out[0].GeneratedText
}

// /v1/caption takes the image as multipart, raw bytes, base64 JSON and a
// data: URL, and answers [{"generated_text"}] equal to the model's greedy
// caption; with max/min_new_tokens 20 it is transformers' golden caption;
// prompt, beams and seeded sampling behave.
func TestServeCaption(t *testing.T) {
	f := newFixture(t, Config{}, fixtureOpts{noRetrieval: true, noVQA: true})
	img := readFile(t, astronaut)
	want := f.refCaption(t, img, "", func(c *generate.Config) {})
	if want == "" {
		t.Fatal("empty reference caption")
	}
	b64 := base64.StdEncoding.EncodeToString(img)
	mp, ct := multipartBody(t, img, nil)
	for name, got := range map[string]string{
		"multipart": f.captionVia(t, "/v1/caption", ct, mp),
		"raw":       f.captionVia(t, "/v1/caption", "image/png", bytes.NewReader(img)),
		"octet":     f.captionVia(t, "/v1/caption", "application/octet-stream", bytes.NewReader(img)),
		"json":      f.captionVia(t, "/v1/caption", "application/json", strings.NewReader(`{"image":"`+b64+`"}`)),
		"data-url":  f.captionVia(t, "/v1/caption", "application/json; charset=utf-8", strings.NewReader(`{"image":"data:image/png;base64,`+b64+`"}`)),
	} {
		if got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}

	// transformers' greedy ids for 20 new tokens (golden.json greedy_len20).
	var golden struct {
		Captioning struct {
			Len20 struct {
				IDs [][]int `json:"ids"`
			} `json:"greedy_len20"`
		} `json:"captioning"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(tinyDir, "golden.json")), &golden); err != nil {
		t.Fatal(err)
	}
	wantGolden := f.models.Caption.Tok.Decode(golden.Captioning.Len20.IDs[0], true)
	got := f.captionVia(t, "/v1/caption?max_new_tokens=20&min_new_tokens=20", "image/png", bytes.NewReader(img))
	if got != wantGolden {
		t.Errorf("max_new_tokens=20: %q, transformers %q", got, wantGolden)
	}

	// Prompt and beams, as form fields and as JSON.
	wantBeam := f.refCaption(t, img, "a picture of", func(c *generate.Config) { c.NumBeams = 3; c.MaxNewTokens = 8 })
	mp, ct = multipartBody(t, img, map[string][]string{"prompt": {"a picture of"}, "num_beams": {"3"}, "max_new_tokens": {"8"}})
	if got := f.captionVia(t, "/v1/caption", ct, mp); got != wantBeam || !strings.HasPrefix(got, "a picture of") {
		t.Errorf("prompt + beams: %q, want %q", got, wantBeam)
	}
	var out []GeneratedText
	f.postJSON(t, "/v1/caption", map[string]any{"image": b64, "prompt": "a picture of", "num_beams": 3, "max_new_tokens": 8}, &out)
	if out[0].GeneratedText != wantBeam {
		t.Errorf("JSON prompt + beams: %q, want %q", out[0].GeneratedText, wantBeam)
	}

	// Seeded sampling reproduces itself and the model's draw.
	wantS := f.refCaption(t, img, "", func(c *generate.Config) {
		c.DoSample, c.TopK, c.TopP, c.Temperature, c.Seed, c.MaxNewTokens = true, 0, 0.9, 1.5, 42, 10
	})
	req := map[string]any{"image": b64, "do_sample": true, "top_p": 0.9, "temperature": 1.5, "seed": 42, "max_new_tokens": 10}
	for i := 0; i < 2; i++ {
		f.postJSON(t, "/v1/caption", req, &out)
		if out[0].GeneratedText != wantS {
			t.Errorf("seeded sampling run %d: %q, want %q", i, out[0].GeneratedText, wantS)
		}
	}
	// Unseeded sampling works too.
	delete(req, "seed")
	f.postJSON(t, "/v1/caption", req, &out)
	t.Logf("greedy %q; beam 3 with prompt %q; sampled %q", want, wantBeam, out[0].GeneratedText)

	// Generation length: max_new_tokens bounds the caption.
	f.postJSON(t, "/v1/caption", map[string]any{"image": b64, "max_new_tokens": 2}, &out)
	if n := len(strings.Fields(out[0].GeneratedText)); n > 2 {
		t.Errorf("max_new_tokens 2 gave %q", out[0].GeneratedText)
	}
}

// /v1/vqa answers [{"answer","score"}] as the model's AnswerQuestions, and
// in rank mode one of the candidates, best first.
func TestServeVQA(t *testing.T) {
	f := newFixture(t, Config{}, fixtureOpts{noCaption: true, noRetrieval: true})
	img := readFile(t, astronaut)
	l := f.models.VQA
	px, err := f.srv.pixels(l, img)
	if err != nil {
		t.Fatal(err)
	}
	var want string
	var wantScore float64
	f.onDevice(t, func() error {
		out, err := l.Model.AnswerQuestions(f.be, px, 1, [][]int32{encode(l.Tok, "what is in the picture?")}, l.Model.QAConfig())
		if err == nil {
			want, wantScore = decode(l.Tok, out.Sequences[0][:out.Lengths[0]]), math.Exp(float64(out.Scores[0]))
		}
		return err
	})
	mp, ct := multipartBody(t, img, map[string][]string{"question": {"what is in the picture?"}})
	code, body := f.do(t, "POST", "/v1/vqa", ct, mp)
	var out []Answer
	if code != 200 || json.Unmarshal(body, &out) != nil || len(out) != 1 {
		t.Fatalf("%d %s", code, body)
	}
	if out[0].Answer != want || math.Abs(out[0].Score-wantScore) > 1e-6 || !(out[0].Score > 0 && out[0].Score <= 1) {
		t.Errorf("answer %+v, want %q (score %v)", out[0], want, wantScore)
	}
	f.postJSON(t, "/v1/vqa", map[string]any{"image": base64.StdEncoding.EncodeToString(img), "question": "what is in the picture?", "num_beams": 3, "max_new_tokens": 5}, &out)
	if len(out) != 1 {
		t.Errorf("beam answer %+v", out)
	}
	cands := []string{"a cat", "rocket", "two", "yes"}
	f.postJSON(t, "/v1/vqa", map[string]any{"image": base64.StdEncoding.EncodeToString(img), "question": "what is it?", "candidates": cands, "top_k": 3}, &out)
	if len(out) != 3 {
		t.Fatalf("rank mode: %+v", out)
	}
	for i, a := range out {
		if !contains(cands, a.Answer) || !(a.Score > 0 && a.Score <= 1) || (i > 0 && a.Score > out[i-1].Score) {
			t.Errorf("rank mode: %+v", out)
		}
	}
	t.Logf("generate: %+v; rank: %+v", want, out)
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// /v1/itm gives transformers' ITM probabilities and ITC cosines (golden
// all-pairs logits of the astronaut against the four golden captions).
func TestServeITM(t *testing.T) {
	f := newFixture(t, Config{}, fixtureOpts{noCaption: true, noVQA: true})
	var out []ITMResult
	f.postJSON(t, "/v1/itm", map[string]any{"image": base64.StdEncoding.EncodeToString(readFile(t, astronaut)), "texts": goldenTexts}, &out)
	g, err := safetensors.Open(filepath.Join(tinyDir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	logits, err := g.Float32("itm.itm_logits_all_pairs")
	if err != nil {
		t.Fatal(err)
	}
	cos, err := g.Float32("itm.cosine_sim")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(goldenTexts) {
		t.Fatalf("%d results", len(out))
	}
	const tol = 1e-4
	for j, r := range out {
		p := 1 / (1 + math.Exp(float64(logits[2*j])-float64(logits[2*j+1])))
		if r.Text != goldenTexts[j] || math.Abs(float64(r.ITMScore)-p) > tol || math.Abs(float64(r.ITCCosine-cos[j])) > tol {
			t.Errorf("text %d: %+v, transformers itm %v cosine %v", j, r, p, cos[j])
		}
	}
	// Form fields: texts repeat.
	mp, ct := multipartBody(t, readFile(t, astronaut), map[string][]string{"texts": goldenTexts[:2]})
	code, body := f.do(t, "POST", "/v1/itm", ct, mp)
	if code != 200 || json.Unmarshal(body, &out) != nil || len(out) != 2 {
		t.Errorf("multipart itm: %d %s", code, body)
	}
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// /v1/embed returns unit vectors for an image and for a text whose dot
// product is /v1/itm's ITC cosine.
func TestServeEmbed(t *testing.T) {
	f := newFixture(t, Config{}, fixtureOpts{noCaption: true, noVQA: true})
	img := readFile(t, astronaut)
	code, body := f.do(t, "POST", "/v1/embed", "image/png", bytes.NewReader(img))
	var ie, te Embedding
	if code != 200 || json.Unmarshal(body, &ie) != nil {
		t.Fatalf("%d %s", code, body)
	}
	f.postJSON(t, "/v1/embed", map[string]any{"text": goldenTexts[0]}, &te)
	if ie.Input != "image" || te.Input != "text" || ie.Dim != 32 || len(ie.Embedding) != 32 || len(te.Embedding) != 32 {
		t.Fatalf("image %+v text %+v", ie, te)
	}
	if math.Abs(norm(ie.Embedding)-1) > 1e-5 || math.Abs(norm(te.Embedding)-1) > 1e-5 {
		t.Errorf("norms %v %v", norm(ie.Embedding), norm(te.Embedding))
	}
	var itm []ITMResult
	f.postJSON(t, "/v1/itm", map[string]any{"image": base64.StdEncoding.EncodeToString(img), "texts": goldenTexts[:1]}, &itm)
	if d := dot(ie.Embedding, te.Embedding); math.Abs(d-float64(itm[0].ITCCosine)) > 1e-5 {
		t.Errorf("embedding dot %v, itm cosine %v", d, itm[0].ITCCosine)
	}
}

// /v1/classify: a softmax over labels of the ITC cosines with
// "a picture of {}", divided by the temperature, best first.
func TestServeClassify(t *testing.T) {
	f := newFixture(t, Config{}, fixtureOpts{noCaption: true, noVQA: true})
	b64 := base64.StdEncoding.EncodeToString(readFile(t, astronaut))
	labels := []string{"cat", "astronaut", "cup of coffee"}
	var out []LabelScore
	f.postJSON(t, "/v1/classify", map[string]any{"image": b64, "candidate_labels": labels}, &out)
	var itm []ITMResult
	var texts []string
	for _, l := range labels {
		texts = append(texts, "a picture of "+l)
	}
	f.postJSON(t, "/v1/itm", map[string]any{"image": b64, "texts": texts}, &itm)
	want := map[string]float64{}
	var sum float64
	for i, l := range labels {
		want[l] = math.Exp(float64(itm[i].ITCCosine) / DefaultTemperature)
		sum += want[l]
	}
	if len(out) != len(labels) {
		t.Fatalf("%+v", out)
	}
	var total float64
	for i, s := range out {
		total += s.Score
		if math.Abs(s.Score-want[s.Label]/sum) > 1e-4 || (i > 0 && s.Score > out[i-1].Score) {
			t.Errorf("%+v, want %v", s, want[s.Label]/sum)
		}
	}
	if math.Abs(total-1) > 1e-9 {
		t.Errorf("scores sum to %v", total)
	}
	f.postJSON(t, "/v1/classify", map[string]any{"image": b64, "candidate_labels": labels, "hypothesis_template": "{}", "temperature": 1}, &out)
	t.Logf("%+v", out)
}

// /v1/search ranks indexed images by ITC cosine (the dot product of
// /v1/embed's vectors), re-ranks by ITM on request, links thumbnails that
// are JPEGs of indexed files only.
func TestServeSearch(t *testing.T) {
	f := newFixture(t, Config{}, fixtureOpts{noCaption: true, noVQA: true, index: true})
	if f.ix.Len() != 5 || len(f.ix.Failed) != 1 {
		t.Fatalf("index: %d entries, %d failed", f.ix.Len(), len(f.ix.Failed))
	}
	code, body := f.do(t, "GET", "/v1/search?q="+url.QueryEscape("a cat sitting on a table")+"&k=3", "", nil)
	var res SearchResponse
	if code != 200 || json.Unmarshal(body, &res) != nil {
		t.Fatalf("%d %s", code, body)
	}
	if res.Indexed != 5 || len(res.Results) != 3 {
		t.Fatalf("%s", body)
	}
	var te Embedding
	f.postJSON(t, "/v1/embed", map[string]any{"text": "a cat sitting on a table"}, &te)
	var all []float64
	for i := 0; i < f.ix.Len(); i++ {
		all = append(all, dot(te.Embedding, f.ix.Vector(i)))
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(all)))
	for i, h := range res.Results {
		if h.Rank != i+1 || math.Abs(float64(h.Score)-all[i]) > 1e-5 || h.ITMScore != nil || h.Path != f.ix.Entries[h.ID].Path {
			t.Errorf("hit %d: %+v, want score %v", i, h, all[i])
		}
	}
	// Thumbnails.
	for _, h := range res.Results {
		code, body := f.do(t, "GET", h.Thumbnail, "", nil)
		if code != 200 {
			t.Fatalf("%s: %d %s", h.Thumbnail, code, body)
		}
		img, err := jpeg.Decode(bytes.NewReader(body))
		if err != nil || max(img.Bounds().Dx(), img.Bounds().Dy()) > ThumbSize {
			t.Errorf("%s: %v %v", h.Thumbnail, err, img.Bounds())
		}
	}
	for _, p := range []string{"/v1/thumb/5", "/v1/thumb/-1", "/v1/thumb/x", "/v1/thumb/..%2f..%2fetc%2fpasswd"} {
		code, body := f.do(t, "GET", p, "", nil)
		wantError(t, p, code, body, http.StatusNotFound)
	}
	// An indexed file replaced by a link out of the folder is not served.
	fetched := map[int]bool{}
	for _, h := range res.Results {
		fetched[h.ID] = true
	}
	for id := range f.ix.Entries {
		if fetched[id] {
			continue
		}
		p := f.ix.AbsPath(id)
		abs, _ := filepath.Abs(astronaut)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, p); err != nil {
			t.Fatal(err)
		}
		code, body := f.do(t, "GET", fmt.Sprintf("/v1/thumb/%d", id), "", nil)
		wantError(t, "thumbnail through a link out of the folder", code, body, http.StatusForbidden, "outside")
		break
	}
	// Re-rank by ITM.
	code, body = f.do(t, "GET", "/v1/search?q=a+cat&k=2&rerank=4", "", nil)
	if code != 200 || json.Unmarshal(body, &res) != nil || len(res.Results) != 2 {
		t.Fatalf("rerank: %d %s", code, body)
	}
	for i, h := range res.Results {
		if h.ITMScore == nil || h.Score != *h.ITMScore || (i > 0 && h.Score > res.Results[i-1].Score) {
			t.Errorf("rerank hit %d: %+v", i, h)
		}
	}
	t.Logf("%s", body)
}

// Health, readiness, info, metrics, the page, and JSON 404/405.
func TestServeOps(t *testing.T) {
	f := newFixture(t, Config{}, fixtureOpts{noVQA: true})
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := f.do(t, "GET", p, "", nil); code != 200 || !strings.Contains(string(body), `"status"`) {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	var info infoResponse
	code, body := f.do(t, "GET", "/v1/info", "", nil)
	if code != 200 || json.Unmarshal(body, &info) != nil || info.Models["caption"] == nil || info.Models["vqa"] != nil || info.Index != nil {
		t.Errorf("info: %d %s", code, body)
	}
	code, body = f.do(t, "GET", "/", "", nil)
	page := string(body)
	if code != 200 || !strings.Contains(page, "/v1/caption") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("page: %d, %d bytes (must not reach outside the server)", code, len(body))
	}
	// Endpoints whose model is missing answer 501.
	code, body = f.do(t, "POST", "/v1/vqa", "application/json", strings.NewReader(`{"question":"what?"}`))
	wantError(t, "vqa without a model", code, body, http.StatusNotImplemented, "--vqa")
	code, body = f.do(t, "GET", "/v1/search?q=cat", "", nil)
	wantError(t, "search without an index", code, body, http.StatusNotImplemented, "index")
	code, body = f.do(t, "GET", "/v1/caption", "", nil)
	wantError(t, "GET caption", code, body, http.StatusMethodNotAllowed, "POST")
	code, body = f.do(t, "POST", "/v1/nope", "application/json", strings.NewReader("{}"))
	wantError(t, "unknown path", code, body, http.StatusNotFound, "/v1/nope")
	f.captionVia(t, "/v1/caption", "image/jpeg", bytes.NewReader(readFile(t, smallJPEG)))

	code, body = f.do(t, "GET", "/metrics", "", nil)
	m := string(body)
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		`blip_http_requests_total{endpoint="/v1/caption",code="200"} 1`,
		`blip_http_requests_total{endpoint="/v1/vqa",code="501"} 1`,
		`blip_http_requests_total{endpoint="/healthz",code="200"} 1`,
		`blip_http_requests_total{endpoint="/v1/caption",code="405"} 1`,
		`blip_http_request_duration_seconds_bucket{endpoint="/v1/caption",le="+Inf"} 2`,
		`blip_http_request_duration_seconds_count{endpoint="/v1/caption"} 2`,
		`blip_device_batch_size_count{kind="caption"} 1`,
		"# TYPE blip_http_request_duration_seconds histogram",
		"blip_device_queue_depth 0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every sample line is `name{labels} value` or `name value`.
	for _, line := range strings.Split(strings.TrimSpace(m), "\n") {
		if strings.HasPrefix(line, "# ") {
			continue
		}
		var v float64
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || !strings.HasPrefix(line, "blip_") {
			t.Errorf("metrics line %q", line)
		} else if _, err := fmt.Sscan(line[i+1:], &v); err != nil {
			t.Errorf("metrics line %q: %v", line, err)
		}
	}
}
