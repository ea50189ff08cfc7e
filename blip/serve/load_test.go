package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"blip/blip"
	"blip/blip/generate"
	"blip/gpu/cpu"
)

// loadResult summarises a load run.
type loadResult struct {
	n, failed     int
	elapsed       time.Duration
	p50, p99, max time.Duration
	firstFailure  string
	captions      map[string]map[string]int // image -> caption -> count
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d requests, %d failed, %.1f req/s, p50 %v, p99 %v, max %v",
		r.n, r.failed, float64(r.n)/r.elapsed.Seconds(), r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond), r.max.Round(100*time.Microsecond))
}

// runLoad sends n caption requests from clients goroutines over one
// keep-alive client, cycling through imgs (raw bodies).
func runLoad(t testing.TB, url string, clients, n int, imgs map[string][]byte) loadResult {
	return runLoadPath(t, url+"/v1/caption", clients, n, imgs)
}

// runLoadPath is runLoad against a full caption URL (with a query).
func runLoadPath(t testing.TB, url string, clients, n int, imgs map[string][]byte) loadResult {
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Minute} // the server times requests out
	names := make([]string, 0, len(imgs))
	for k := range imgs {
		names = append(names, k)
	}
	sort.Strings(names)
	var next atomic.Int64
	lat := make([]time.Duration, n)
	res := loadResult{n: n, captions: map[string]map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				name := names[i%len(names)]
				t0 := time.Now()
				code, body, err := post(client, url, imgs[name])
				lat[i] = time.Since(t0)
				var out []GeneratedText
				if err == nil && code == 200 {
					err = json.Unmarshal(body, &out)
				}
				mu.Lock()
				if err != nil || code != 200 || len(out) != 1 {
					res.failed++
					if res.firstFailure == "" {
						res.firstFailure = fmt.Sprintf("%v %d %s", err, code, body)
					}
				} else {
					if res.captions[name] == nil {
						res.captions[name] = map[string]int{}
					}
					res.captions[name][out[0].GeneratedText]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.p50, res.p99, res.max = lat[n/2], lat[min(n-1, n*99/100)], lat[n-1]
	return res
}

func post(c *http.Client, url string, img []byte) (int, []byte, error) {
	ct := "image/png"
	if bytes.HasPrefix(img, []byte{0xff, 0xd8}) {
		ct = "image/jpeg"
	}
	res, err := c.Post(url, ct, bytes.NewReader(img))
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// loadImages are small images so the load is the model, not PNG decoding.
func loadImages(t testing.TB) map[string][]byte {
	pre := filepath.Join("..", "..", "testdata", "preprocess")
	out := map[string][]byte{}
	for _, n := range []string{"j420.jpg", "j444.jpg", "jgray.jpg", "g8.png"} {
		out[n] = readFile(t, filepath.Join(pre, n))
	}
	return out
}

// 64 concurrent clients send 2000 caption requests (200 from 16 with
// -short) over loopback to the tiny model: none may fail, each image
// always gets its unbatched greedy caption, and requests were batched.
func TestServeLoad(t *testing.T) {
	clients, n := 64, 2000
	if testing.Short() {
		clients, n = 16, 200
	}
	f := newFixture(t, Config{MaxBatch: 16, MaxWait: 2 * time.Millisecond, QueueSize: 256}, fixtureOpts{noRetrieval: true, noVQA: true})
	imgs := loadImages(t)
	want := map[string]string{}
	for name, b := range imgs {
		want[name] = f.refCaption(t, b, "", func(*generate.Config) {})
	}
	res := runLoad(t, f.ts.URL, clients, n, imgs)
	t.Logf("%d clients: %v", clients, res)
	if res.failed > 0 {
		t.Errorf("%d of %d requests failed; first: %s", res.failed, n, res.firstFailure)
	}
	for name, caps := range res.captions {
		if len(caps) != 1 || caps[want[name]] == 0 {
			t.Errorf("%s: captions %v, unbatched %q", name, caps, want[name])
		}
	}
	code, body := f.do(t, "GET", "/metrics", "", nil)
	if code != 200 {
		t.Fatal(code)
	}
	var sum, count float64
	for _, line := range strings.Split(string(body), "\n") {
		fmt.Sscanf(line, `blip_device_batch_size_sum{kind="caption"} %g`, &sum)
		fmt.Sscanf(line, `blip_device_batch_size_count{kind="caption"} %g`, &count)
	}
	if count == 0 || sum != float64(n) {
		t.Errorf("batch metrics: %v requests in %v runs, want %d requests", sum, count, n)
	}
	t.Logf("mean device batch %.2f (%v runs)", sum/count, count)
	if !testing.Short() && sum/count < 2 {
		t.Errorf("requests were hardly batched: mean batch %.2f", sum/count)
	}
}

// BenchmarkServeCaption: caption requests from 32 concurrent clients over
// loopback, batch grouping off (max batch 1) and on (8, 16), on the tiny
// model; reports requests/s and p50/p99 latency.
func BenchmarkServeCaption(b *testing.B) {
	imgs := loadImages(b)
	for _, bc := range []struct {
		name  string
		batch int
		wait  time.Duration
	}{{"batch=off", 1, -1}, {"batch=8", 8, 2 * time.Millisecond}, {"batch=16", 16, 2 * time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, Config{MaxBatch: bc.batch, MaxWait: bc.wait, QueueSize: 512}, fixtureOpts{noRetrieval: true, noVQA: true})
			runLoad(b, f.ts.URL, 32, 64, imgs) // warm up: compile the plans of each batch size
			b.ResetTimer()
			res := runLoad(b, f.ts.URL, 32, max(b.N, 32), imgs)
			b.StopTimer()
			if res.failed > 0 {
				b.Fatalf("%d failed: %s", res.failed, res.firstFailure)
			}
			b.ReportMetric(float64(res.n)/res.elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(res.p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(res.p99.Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkServeCaptionBase is BenchmarkServeCaption on a ViT-B/16 384px +
// BERT-base captioning model with random weights (transformers' default
// BlipConfig, as blip bench caption --size base), 10 new tokens per
// caption, 16 clients. It writes a 1 GB folder and takes minutes on CPUs:
// it runs only with BLIP_BENCH_BASE=1.
func BenchmarkServeCaptionBase(b *testing.B) {
	if os.Getenv("BLIP_BENCH_BASE") != "1" {
		b.Skip("set BLIP_BENCH_BASE=1 to run (writes a 1 GB random base model)")
	}
	dir := filepath.Join(b.TempDir(), "base")
	cfg := `{"architectures": ["BlipForConditionalGeneration"], "text_config": {}, "vision_config": {"image_size": 384}}`
	if err := blip.WriteRandomFolder(dir, []byte(cfg), 1); err != nil {
		b.Fatal(err)
	}
	// A BERT-shaped vocabulary: the special tokens where bert-base has them.
	var vocab strings.Builder
	for i := 0; i < 30522; i++ {
		switch i {
		case 0:
			vocab.WriteString("[PAD]\n")
		case 100:
			vocab.WriteString("[UNK]\n")
		case 101:
			vocab.WriteString("[CLS]\n")
		case 102:
			vocab.WriteString("[SEP]\n")
		case 103:
			vocab.WriteString("[MASK]\n")
		default:
			fmt.Fprintf(&vocab, "w%d\n", i)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte(vocab.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	imgs := loadImages(b)
	for _, bc := range []struct {
		name  string
		batch int
		wait  time.Duration
	}{{"batch=off", 1, -1}, {"batch=8", 8, 5 * time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			be := cpu.New()
			defer be.Close()
			ms, err := LoadModels(be, ModelDirs{Caption: dir})
			if err != nil {
				b.Fatal(err)
			}
			defer ms.Close()
			srv, err := New(be, ms, nil, Config{MaxBatch: bc.batch, MaxWait: bc.wait, RequestTimeout: 30 * time.Minute, Log: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			ts := httptest.NewServer(srv)
			defer ts.Close()
			url := ts.URL + "/v1/caption?max_new_tokens=10&min_new_tokens=10"
			runLoadPath(b, url, bc.batch, bc.batch, imgs) // warm up
			b.ResetTimer()
			res := runLoadPath(b, url, 16, max(b.N, 16), imgs)
			b.StopTimer()
			if res.failed > 0 {
				b.Fatalf("%d failed: %s", res.failed, res.firstFailure)
			}
			b.ReportMetric(float64(res.n)/res.elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(res.p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(res.p99.Microseconds())/1000, "p99-ms")
		})
	}
}
