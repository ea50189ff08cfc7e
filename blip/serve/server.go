package serve

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	"blip/blip/index"
	"blip/gpu"
)

// Config holds the server's limits and batching settings. Zero fields
// take DefaultConfig's values.
type Config struct {
	// MaxBatch is the most caption requests one device run decodes
	// together (1: no grouping); MaxWait is how long the first request of
	// a batch may wait for others, counted from when it was queued
	// (negative: no waiting, only requests already queued are grouped).
	MaxBatch int
	MaxWait  time.Duration
	// QueueSize bounds the requests waiting for the device; more are
	// refused with 503.
	QueueSize int
	// MaxBodyBytes bounds a request body; MaxPixels an image's
	// width*height, checked from its header before decoding.
	MaxBodyBytes int64
	MaxPixels    int64
	// MaxNewTokens bounds max_new_tokens (generation length), MaxBeams
	// num_beams, MaxTexts the texts or labels of one request.
	MaxNewTokens int
	MaxBeams     int
	MaxTexts     int
	// MaxSearchK bounds k and MaxRerank the ITM re-ranked results of
	// /v1/search.
	MaxSearchK int
	MaxRerank  int
	// RequestTimeout bounds each API request, queueing included.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds how long Serve waits for in-flight requests
	// once its context ends.
	ShutdownTimeout time.Duration
	// Log receives one-line notices (nil: the standard logger's output).
	Log io.Writer
}

// DefaultConfig returns the defaults blip serve starts with.
func DefaultConfig() Config {
	return Config{
		MaxBatch: 8, MaxWait: 5 * time.Millisecond, QueueSize: 256,
		MaxBodyBytes: 32 << 20, MaxPixels: 40_000_000,
		MaxNewTokens: 64, MaxBeams: 8, MaxTexts: 64,
		MaxSearchK: 100, MaxRerank: 32,
		RequestTimeout: 60 * time.Second, ShutdownTimeout: 60 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxBatch <= 0 {
		c.MaxBatch = d.MaxBatch
	}
	switch {
	case c.MaxWait == 0:
		c.MaxWait = d.MaxWait
	case c.MaxWait < 0:
		c.MaxWait = 0
	}
	if c.QueueSize <= 0 {
		c.QueueSize = d.QueueSize
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = d.MaxPixels
	}
	if c.MaxNewTokens <= 0 {
		c.MaxNewTokens = d.MaxNewTokens
	}
	if c.MaxBeams <= 0 {
		c.MaxBeams = d.MaxBeams
	}
	if c.MaxTexts <= 0 {
		c.MaxTexts = d.MaxTexts
	}
	if c.MaxSearchK <= 0 {
		c.MaxSearchK = d.MaxSearchK
	}
	if c.MaxRerank <= 0 {
		c.MaxRerank = d.MaxRerank
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	return c
}

//go:embed web/index.html
var webFS embed.FS

// Server answers the HTTP API with models on one backend. Create it with
// New, serve it with Serve (or use it as an http.Handler) and Close it;
// the models and the backend stay the caller's.
type Server struct {
	cfg    Config
	be     gpu.Backend
	models *Models
	ix     *index.Index
	root   string // the index root with symbolic links resolved
	w      *worker
	met    *metrics
	mux    *http.ServeMux
	thumbs *thumbCache
	log    *log.Logger
	ready  atomic.Bool
	page   []byte
}

// New starts the device worker. ix (optional) is searched by /v1/search
// and needs the retrieval model it was built with.
func New(be gpu.Backend, ms *Models, ix *index.Index, cfg Config) (*Server, error) {
	if ms == nil {
		return nil, errors.New("serve: no models")
	}
	cfg = cfg.withDefaults()
	out := cfg.Log
	if out == nil {
		out = log.Writer()
	}
	s := &Server{cfg: cfg, be: be, models: ms, ix: ix, log: log.New(out, "", log.LstdFlags), thumbs: newThumbCache(512)}
	if ix != nil {
		if ms.Retrieval == nil {
			return nil, errors.New("serve: searching an index needs the retrieval model it was built with (--retrieval)")
		}
		if d := ms.Retrieval.Model.Config.ImageTextHiddenSize; d != ix.Dim {
			return nil, fmt.Errorf("serve: the index holds %d-wide embeddings, %s makes %d-wide ones: index the folder with this model", ix.Dim, ms.Retrieval.Dir, d)
		}
		root, err := filepath.EvalSymlinks(ix.Root)
		if err != nil {
			return nil, fmt.Errorf("serve: index root: %w", err)
		}
		s.root = root
	}
	page, err := webFS.ReadFile("web/index.html")
	if err != nil {
		return nil, err
	}
	s.page = page
	s.met = newMetrics(s.log)
	s.w = newWorker(be, ms, cfg, s.met)
	s.met.queue = s.w.depth
	s.routes()
	s.ready.Store(true)
	return s, nil
}

// Config returns the settings in effect.
func (s *Server) Config() Config { return s.cfg }

// ServeHTTP makes the Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close marks the server not ready and stops the device worker; requests
// still queued get 503. Call it after the HTTP server has shut down.
func (s *Server) Close() {
	s.ready.Store(false)
	s.w.stop()
}

// Serve serves on ln until ctx ends, then shuts down gracefully: /readyz
// turns 503, the listener closes, in-flight requests finish (within
// ShutdownTimeout), and the device worker stops. It returns nil after a
// clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.cfg.RequestTimeout,
		WriteTimeout:      s.cfg.RequestTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          s.log,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	s.Close()
	if err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.Handle("/v1/caption", s.api("/v1/caption", http.MethodPost, s.caption))
	m.Handle("/v1/vqa", s.api("/v1/vqa", http.MethodPost, s.vqa))
	m.Handle("/v1/itm", s.api("/v1/itm", http.MethodPost, s.itm))
	m.Handle("/v1/embed", s.api("/v1/embed", http.MethodPost, s.embed))
	m.Handle("/v1/classify", s.api("/v1/classify", http.MethodPost, s.classify))
	m.Handle("/v1/search", s.api("/v1/search", http.MethodGet, s.search))
	m.Handle("/v1/info", s.api("/v1/info", http.MethodGet, s.info))
	m.Handle("/v1/thumb/{id}", s.instrument("/v1/thumb", http.HandlerFunc(s.thumb)))
	m.Handle("/healthz", s.api("/healthz", http.MethodGet, func(http.ResponseWriter, *http.Request) (any, error) {
		return map[string]string{"status": "ok"}, nil
	}))
	m.Handle("/readyz", s.api("/readyz", http.MethodGet, func(http.ResponseWriter, *http.Request) (any, error) {
		if !s.ready.Load() {
			return nil, &apiError{http.StatusServiceUnavailable, "not ready: shutting down"}
		}
		return map[string]string{"status": "ready"}, nil
	}))
	m.Handle("/metrics", s.met)
	m.Handle("/", s.instrument("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && r.URL.Path != "/index.html" {
			writeError(w, &apiError{http.StatusNotFound, fmt.Sprintf("no such endpoint %s", r.URL.Path)})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, &apiError{http.StatusMethodNotAllowed, r.Method + " is not allowed here; use GET"})
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self'")
		w.Write(s.page)
	})))
	s.mux = m
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument counts requests by endpoint and status, times them, and turns
// a panic into a 500 JSON error.
func (s *Server) instrument(endpoint string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.met.inflight.Add(1)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Printf("serve: panic in %s: %v\n%s", endpoint, p, debug.Stack())
				if sw.code == 0 {
					writeError(sw, &apiError{http.StatusInternalServerError, fmt.Sprintf("internal error: %v", p)})
				}
			}
			s.met.inflight.Add(-1)
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			s.met.request(endpoint, code, time.Since(start))
		}()
		h.ServeHTTP(sw, r)
	})
}

// api wraps a JSON handler: method check, request timeout, JSON result or
// JSON error.
func (s *Server) api(endpoint, method string, h func(http.ResponseWriter, *http.Request) (any, error)) http.Handler {
	return s.instrument(endpoint, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, &apiError{http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, endpoint, method)})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		v, err := h(w, r.WithContext(ctx))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError writes {"error": msg} with the error's status (500 for
// errors without one).
func writeError(w http.ResponseWriter, err error) {
	code, msg := http.StatusInternalServerError, err.Error()
	var ae *apiError
	if errors.As(err, &ae) {
		code, msg = ae.status, ae.msg
	}
	writeJSON(w, code, map[string]string{"error": msg})
}
