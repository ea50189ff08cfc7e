package serve

import (
	"bytes"
	"context"
	"html"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// findChromium returns a headless-capable Chromium, or skips the test
// (fails it under BLIP_REQUIRE_CHROMIUM=1).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("BLIP_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is not installed and BLIP_REQUIRE_CHROMIUM=1 (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); BLIP_REQUIRE_CHROMIUM=1 makes this a failure")
	return ""
}

// dumpDOM loads url in headless Chromium and returns the DOM once the
// page's scripts and fetches are done (virtual time).
func dumpDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
		"--metrics-recording-only", "--mute-audio", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=30000", "--dump-dom", url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return stdout.String()
}

// textOf returns the text of the element with the id.
func textOf(dom, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// The web page in headless Chromium: it uploads an image through the same
// code path as a dropped file (test mode ?autoload= fetches it from the
// server), shows the server's caption and VQA answer, and lists search
// results with thumbnails.
func TestServeChromium(t *testing.T) {
	chromium := findChromium(t)
	img := readFile(t, astronaut)
	f := newFixture(t, Config{}, fixtureOpts{index: true, wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/test/astronaut.png" {
				w.Header().Set("Content-Type", "image/png")
				w.Write(img)
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	wantCaption := f.captionVia(t, "/v1/caption", "image/png", bytes.NewReader(img))
	mp, ct := multipartBody(t, img, map[string][]string{"question": {"what is in the picture?"}})
	code, body := f.do(t, "POST", "/v1/vqa", ct, mp)
	if code != 200 {
		t.Fatalf("vqa: %d %s", code, body)
	}
	start := time.Now()
	dom := dumpDOM(t, chromium, f.ts.URL+"/?autoload=/test/astronaut.png&question=what+is+in+the+picture%3F&search=a+cat")
	t.Logf("chromium took %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(dom, `data-state="done"`) {
		t.Errorf("the page did not finish: %s", dom)
	}
	if got := textOf(dom, "caption"); got != wantCaption {
		t.Errorf("page caption %q, API %q", got, wantCaption)
	}
	if got := textOf(dom, "answer"); got == "" || strings.Contains(dom, `class="out err"`) {
		t.Errorf("page answer %q (the API said %s)", got, body)
	}
	if got := textOf(dom, "search-status"); got != "5 of 5 images" {
		t.Errorf("search status %q", got)
	}
	if n := strings.Count(dom, `<img src="/v1/thumb/`); n != 5 {
		t.Errorf("%d thumbnails on the page", n)
	}
	t.Logf("caption %q, answer %q", textOf(dom, "caption"), textOf(dom, "answer"))
	// The page fetched every thumbnail it shows.
	code, mbody := f.do(t, "GET", "/metrics", "", nil)
	if code != 200 || !strings.Contains(string(mbody), `blip_http_requests_total{endpoint="/v1/thumb",code="200"}`) {
		t.Errorf("no thumbnails were served")
	}
}
