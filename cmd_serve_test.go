package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// blip serve answers a caption request and stops cleanly on SIGTERM.
func TestServeCLI(t *testing.T) {
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() {
		done <- newApp().Run([]string{"blip", "--backend", "cpu", "serve", "--model", filepath.Join(tinyTestDir, "tiny-captioning"),
			"--vqa", tinyVQAFolder(t), "--addr", addr, "--max-batch", "4"})
	}()
	url := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not become ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	img, err := os.ReadFile(astronaut)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(url+"/v1/caption", "image/png", bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var out []struct {
		GeneratedText string `json:"generated_text"`
	}
	if res.StatusCode != 200 || json.Unmarshal(body, &out) != nil || len(out) != 1 || out[0].GeneratedText == "" {
		t.Fatalf("caption: %d %s", res.StatusCode, body)
	}
	cli, err := run(t, "--backend", "cpu", "caption", "--model", filepath.Join(tinyTestDir, "tiny-captioning"), astronaut)
	if err != nil || !strings.Contains(cli, "\t"+out[0].GeneratedText+"\n") {
		t.Errorf("serve captioned %q, blip caption %q (%v)", out[0].GeneratedText, cli, err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

// Startup errors name what is wrong before anything is served.
func TestServeCLIErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "at least one of --model"},
		{[]string{"--model", missing}, missing},
		{[]string{"--retrieval", filepath.Join(tinyTestDir, "tiny-captioning")}, "BlipForImageTextRetrieval"},
		{[]string{"--model", filepath.Join(tinyTestDir, "tiny-captioning"), "--index", "x.idx"}, "--index needs --retrieval"},
		{[]string{"--retrieval", filepath.Join(tinyTestDir, "tiny-retrieval"), "--index", missing}, missing},
		{[]string{"--model", filepath.Join(tinyTestDir, "tiny-captioning"), "--addr", "256.0.0.1:1"}, "256.0.0.1"},
	} {
		err := newApp().Run(append([]string{"blip", "--backend", "cpu", "serve"}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want it to mention %q", c.args, err, c.want)
		}
	}
}

// blip index embeds a folder (re-runs only new files) and blip search
// ranks it, with and without ITM re-ranking.
func TestServeIndexSearchCLI(t *testing.T) {
	photos := filepath.Join(t.TempDir(), "photos")
	os.MkdirAll(photos, 0o755)
	for _, n := range []string{"astronaut.png", "chelsea.png"} {
		b, _ := os.ReadFile(filepath.Join(tinyTestDir, "images", n))
		os.WriteFile(filepath.Join(photos, n), b, 0o644)
	}
	out := filepath.Join(t.TempDir(), "photos.idx")
	model := filepath.Join(tinyTestDir, "tiny-retrieval")
	if _, err := run(t, "--backend", "cpu", "index", "--model", model, "--out", out, photos); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(tinyTestDir, "images", "rocket.jpg"))
	os.WriteFile(filepath.Join(photos, "rocket.jpg"), b, 0o644)
	if _, err := run(t, "--backend", "cpu", "index", "--model", model, "--out", out, photos); err != nil {
		t.Fatal(err)
	}
	txt, err := run(t, "--backend", "cpu", "search", "--index", out, "--k", "2", "a rocket on the launch pad")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(txt), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "1\t") {
		t.Fatalf("search: %q", txt)
	}
	js, err := run(t, "--backend", "cpu", "search", "--index", out, "--rerank", "3", "--json", "a rocket on the launch pad")
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(js), "\n")
	if len(lines) != 3 {
		t.Fatalf("search --rerank: %q", js)
	}
	prev := 2.0
	for _, l := range lines {
		var r struct {
			Path     string   `json:"path"`
			Score    float64  `json:"score"`
			ITMScore *float64 `json:"itm_score"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.ITMScore == nil || r.Score > prev || !strings.HasPrefix(r.Path, photos) {
			t.Errorf("rerank line %q", l)
		}
		prev = r.Score
	}
	// Another model's weights: search refuses the index.
	if _, err := run(t, "--backend", "cpu", "search", "--index", out, "--model", filepath.Join(tinyTestDir, "tiny-captioning"), "x"); err == nil || !strings.Contains(err.Error(), "rebuild") {
		t.Errorf("search with another model: %v", err)
	}
}
