package serve

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// block occupies the device worker until release is closed.
func (f *fixture) block(t *testing.T) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	started := make(chan struct{})
	go f.srv.w.submit(context.Background(), &task{kind: "test", fn: func() error {
		close(started)
		<-ch
		return nil
	}})
	<-started
	return func() { close(ch) }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// SIGTERM stops accepting connections, finishes the request in flight
// (queued behind a busy device) with 200, and Serve returns cleanly.
func TestServeGracefulShutdown(t *testing.T) {
	f := newFixture(t, Config{}, fixtureOpts{noRetrieval: true, noVQA: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	img := readFile(t, smallJPEG)

	release := f.block(t)
	type result struct {
		code int
		body []byte
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		res, err := http.Post(url+"/v1/caption", "image/jpeg", bytes.NewReader(img))
		if err != nil {
			inflight <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		inflight <- result{res.StatusCode, b, nil}
	}()
	waitFor(t, "the request to queue", func() bool { return f.srv.w.depth() == 1 })

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "readiness to drop", func() bool { return !f.srv.ready.Load() })
	// New connections are refused while the old request is still running.
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	r := <-inflight
	if r.err != nil || r.code != 200 {
		t.Fatalf("in-flight request: %v %d %s", r.err, r.code, r.body)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the last request")
	}
	// The worker is gone: direct submissions are refused.
	if err := f.srv.w.submit(context.Background(), &task{kind: "test", fn: func() error { return nil }}); err != errStopping {
		t.Errorf("submit after shutdown: %v", err)
	}
}

// A request that waits past its timeout gets 504; a full queue gives 503;
// both as JSON errors, and the server recovers.
func TestServeTimeoutAndBusy(t *testing.T) {
	f := newFixture(t, Config{RequestTimeout: 150 * time.Millisecond, QueueSize: 1, MaxWait: -1}, fixtureOpts{noRetrieval: true, noVQA: true})
	img := readFile(t, smallJPEG)
	release := f.block(t)
	code, body := f.do(t, "POST", "/v1/caption", "image/jpeg", bytes.NewReader(img))
	wantError(t, "timeout", code, body, http.StatusGatewayTimeout, "timed out")

	// The abandoned request stays queued until the worker reaches it, and
	// fills the one-slot queue: the next request is refused at once.
	waitFor(t, "queue to hold the abandoned task", func() bool { return f.srv.w.depth() == 1 })
	code, body = f.do(t, "POST", "/v1/caption", "image/jpeg", bytes.NewReader(img))
	wantError(t, "busy", code, body, http.StatusServiceUnavailable, "busy")
	release()
	waitFor(t, "the queue to drain", func() bool { return f.srv.w.depth() == 0 })
	f.captionVia(t, "/v1/caption", "image/jpeg", bytes.NewReader(img))
}

// A panic in device work is a 500 for that request, not a crash.
func TestServeWorkerPanic(t *testing.T) {
	f := newFixture(t, Config{}, fixtureOpts{noRetrieval: true, noVQA: true})
	err := f.srv.w.submit(context.Background(), &task{kind: "test", fn: func() error { panic("boom") }})
	if ae, ok := err.(*apiError); !ok || ae.status != 500 {
		t.Fatalf("panic gave %v", err)
	}
	f.captionVia(t, "/v1/caption", "image/jpeg", bytes.NewReader(readFile(t, smallJPEG)))
}
