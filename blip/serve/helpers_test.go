package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blip/blip"
	"blip/blip/index"
	"blip/gpu"
	"blip/gpu/cpu"
)

var (
	tinyDir   = filepath.Join("..", "..", "testdata", "hf-blip-tiny")
	imagesDir = filepath.Join(tinyDir, "images")
	astronaut = filepath.Join(imagesDir, "astronaut.png")
	smallJPEG = filepath.Join("..", "..", "testdata", "preprocess", "j420.jpg")
)

// fixture is a server over the tiny models on the CPU backend.
type fixture struct {
	be     gpu.Backend
	models *Models
	srv    *Server
	ts     *httptest.Server
	ix     *index.Index
}

type fixtureOpts struct {
	noCaption, noRetrieval, noVQA bool
	index                         bool // build an index of the tiny images
	wrap                          func(http.Handler) http.Handler
}

// tinyVQADir writes a random BlipForQuestionAnswering folder with the tiny
// captioning config.
func tinyVQADir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny-vqa")
	if err := blip.WriteRandomFolderFrom(dir, filepath.Join(tinyDir, "tiny-captioning"), blip.KindQA, 7, 0.5); err != nil {
		t.Fatal(err)
	}
	return dir
}

// loadModels loads the tiny models onto a fresh CPU backend.
func loadModels(t testing.TB, o fixtureOpts) (gpu.Backend, *Models) {
	t.Helper()
	be := cpu.New()
	var d ModelDirs
	if !o.noCaption {
		d.Caption = filepath.Join(tinyDir, "tiny-captioning")
	}
	if !o.noRetrieval {
		d.Retrieval = filepath.Join(tinyDir, "tiny-retrieval")
	}
	if !o.noVQA {
		d.VQA = tinyVQADir(t)
	}
	ms, err := LoadModels(be, d)
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	return be, ms
}

// buildIndex indexes a copy of the tiny images (and one unreadable file)
// with the retrieval model, on the calling goroutine.
func buildIndex(t testing.TB, be gpu.Backend, l *Loaded) *index.Index {
	t.Helper()
	root := filepath.Join(t.TempDir(), "photos")
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(imagesDir)
	for _, e := range ents {
		copyFile(t, filepath.Join(imagesDir, e.Name()), filepath.Join(root, e.Name()))
	}
	copyFile(t, smallJPEG, filepath.Join(root, "sub", "small.jpg"))
	os.WriteFile(filepath.Join(root, "broken.png"), []byte("not a png"), 0o644)
	fp, err := index.Fingerprint(l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ix, _, err := index.Build(context.Background(), index.BuildOptions{
		Root: root, Out: filepath.Join(t.TempDir(), "photos.idx"), Model: l.Dir, Fingerprint: fp,
		Dim: l.Model.Config.ImageTextHiddenSize,
	}, func(imgs []image.Image) ([]float32, error) {
		px, err := l.Proc.Batch(imgs)
		if err != nil {
			return nil, err
		}
		return l.Model.ImageEmbeddings(be, px, len(imgs))
	})
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// newFixture starts an httptest server; everything is closed with the test.
func newFixture(t testing.TB, cfg Config, o fixtureOpts) *fixture {
	t.Helper()
	be, ms := loadModels(t, o)
	f := &fixture{be: be, models: ms}
	if o.index {
		f.ix = buildIndex(t, be, ms.Retrieval)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	srv, err := New(be, ms, f.ix, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	var h http.Handler = srv
	if o.wrap != nil {
		h = o.wrap(srv)
	}
	f.ts = httptest.NewServer(h)
	t.Cleanup(func() {
		f.ts.Close()
		srv.Close()
		ms.Close()
		be.Close()
	})
	return f
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// multipartBody builds a form with the image as the "image" file part.
func multipartBody(t testing.TB, img []byte, fields map[string][]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if img != nil {
		w, err := mw.CreateFormFile("image", "image.png")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(img)
	}
	for k, vs := range fields {
		for _, v := range vs {
			mw.WriteField(k, v)
		}
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

// do sends a request and returns the status and body.
func (f *fixture) do(t testing.TB, method, path, contentType string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// postJSON posts v as JSON and decodes a 200 answer into out.
func (f *fixture) postJSON(t testing.TB, path string, v, out any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	code, body := f.do(t, http.MethodPost, path, "application/json", bytes.NewReader(b))
	if code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("POST %s: %v: %s", path, err, body)
	}
}

// wantError checks a JSON error answer with the status and a message
// containing every want.
func wantError(t testing.TB, what string, code int, body []byte, status int, want ...string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("%s: %d, body %q is not a JSON error", what, code, body)
		return
	}
	if code != status {
		t.Errorf("%s: status %d, want %d (%s)", what, code, status, e.Error)
	}
	for _, w := range want {
		if !strings.Contains(e.Error, w) {
			t.Errorf("%s: error %q does not mention %q", what, e.Error, w)
		}
	}
}
