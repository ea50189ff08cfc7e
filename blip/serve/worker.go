package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"blip/blip/generate"
	"blip/gpu"
)

// Task states: queued, taken by the worker, abandoned by its request.
const (
	stateQueued int32 = iota
	stateRunning
	stateAbandoned
)

// task is one unit of device work. Caption tasks with the same non-empty
// key can share one GenerateCaptions call; everything else runs alone.
type task struct {
	kind  string // metrics label: caption, vqa, itm, embed, classify, search
	key   string
	cap   *captionItem
	fn    func() error
	enq   time.Time
	state atomic.Int32
	done  chan error // buffered: the worker never blocks on a gone request
}

// captionItem is one image to caption and, once done, its sequence.
type captionItem struct {
	pixels []float32
	prompt []int32 // nil: no prompt
	cfg    generate.Config
	// randomSeed: sampling without a seed; the batch draws one.
	randomSeed bool
	seq        []int32
}

// worker owns the backend and the models: the only goroutine that runs
// device work, since backends are not safe for concurrent use. Caption
// tasks are grouped: the first task of a batch waits until maxWait after
// it was queued (or not at all when the queue already holds enough) for
// up to maxBatch tasks with its key; tasks with another key wait their
// turn in order.
type worker struct {
	be       gpu.Backend
	models   *Models
	q        chan *task
	pending  []*task
	maxBatch int
	maxWait  time.Duration
	met      *metrics
	quit     chan struct{}
	exited   chan struct{}
	stopping atomic.Bool
	npending atomic.Int64 // len(pending), for depth from other goroutines
}

func newWorker(be gpu.Backend, ms *Models, cfg Config, met *metrics) *worker {
	w := &worker{
		be: be, models: ms, q: make(chan *task, cfg.QueueSize),
		maxBatch: max(1, cfg.MaxBatch), maxWait: cfg.MaxWait, met: met,
		quit: make(chan struct{}), exited: make(chan struct{}),
	}
	go w.loop()
	return w
}

// stop ends the worker once the queue is empty of live work; tasks still
// queued are failed.
func (w *worker) stop() {
	if w.stopping.CompareAndSwap(false, true) {
		close(w.quit)
	}
	<-w.exited
}

// depth is the number of queued tasks.
func (w *worker) depth() int { return len(w.q) + int(w.npending.Load()) }

var (
	errBusy     = &apiError{http.StatusServiceUnavailable, "the server is busy: too many queued requests, retry later"}
	errStopping = &apiError{http.StatusServiceUnavailable, "the server is shutting down"}
)

// submit queues t and waits for it or for ctx. A task that has not started
// when ctx ends is dropped; one that has started finishes unobserved.
func (w *worker) submit(ctx context.Context, t *task) error {
	if w.stopping.Load() {
		return errStopping
	}
	t.enq = time.Now()
	t.done = make(chan error, 1)
	select {
	case w.q <- t:
	default:
		return errBusy
	}
	select {
	case err := <-t.done:
		return err
	case <-w.exited:
		select {
		case err := <-t.done:
			return err
		default:
			return errStopping
		}
	case <-ctx.Done():
		t.state.CompareAndSwap(stateQueued, stateAbandoned)
		select {
		case err := <-t.done: // finished meanwhile
			return err
		default:
		}
		if ctx.Err() == context.DeadlineExceeded {
			return &apiError{http.StatusGatewayTimeout, "the request timed out before the model answered"}
		}
		return &apiError{499, "the client went away"}
	}
}

// next returns the oldest pending task or the next queued one; nil when
// the worker is told to quit.
func (w *worker) next() *task {
	if len(w.pending) > 0 {
		t := w.pending[0]
		w.pending = w.pending[1:]
		return t
	}
	select {
	case t := <-w.q:
		return t
	case <-w.quit:
		return nil
	}
}

func (w *worker) loop() {
	defer close(w.exited)
	for {
		t := w.next()
		w.npending.Store(int64(len(w.pending)))
		if t == nil {
			w.drain()
			return
		}
		if !t.state.CompareAndSwap(stateQueued, stateRunning) {
			continue
		}
		if t.cap == nil || t.key == "" || w.maxBatch == 1 {
			w.run([]*task{t})
			continue
		}
		batch := w.gather(t)
		w.npending.Store(int64(len(w.pending)))
		w.run(batch)
	}
}

// gather collects tasks with t's key: pending ones first, then queued
// ones, waiting until t.enq+maxWait for more.
func (w *worker) gather(t *task) []*task {
	batch := []*task{t}
	keep := w.pending[:0]
	for _, p := range w.pending {
		switch {
		case p.state.Load() == stateAbandoned:
		case len(batch) < w.maxBatch && p.key == t.key && p.state.CompareAndSwap(stateQueued, stateRunning):
			batch = append(batch, p)
		default:
			keep = append(keep, p)
		}
	}
	clear(w.pending[len(keep):])
	w.pending = keep
	deadline := t.enq.Add(w.maxWait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(batch) < w.maxBatch && len(w.pending) < cap(w.q) {
		var u *task
		select {
		case u = <-w.q:
		default:
			wait := time.Until(deadline)
			if wait <= 0 {
				return batch
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			}
			select {
			case u = <-w.q:
			case <-timer.C:
				return batch
			case <-w.quit:
				return batch
			}
		}
		switch {
		case u.state.Load() == stateAbandoned:
		case u.key == t.key && u.state.CompareAndSwap(stateQueued, stateRunning):
			batch = append(batch, u)
		default:
			w.pending = append(w.pending, u)
		}
	}
	return batch
}

// run executes one task or one caption batch and reports to each task;
// a panic becomes an error of every task, and the worker goes on.
func (w *worker) run(batch []*task) {
	start := time.Now()
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = &apiError{http.StatusInternalServerError, fmt.Sprintf("internal error: %v", r)}
				w.met.logf("serve: panic on the device worker: %v\n%s", r, debug.Stack())
			}
		}()
		if batch[0].cap != nil {
			return w.caption(batch)
		}
		return batch[0].fn()
	}()
	w.met.device(batch[0].kind, len(batch), time.Since(start))
	for _, t := range batch {
		t.done <- err
	}
}

// caption runs one GenerateCaptions call for tasks that share options.
func (w *worker) caption(batch []*task) error {
	l := w.models.Caption
	n := len(batch)
	first := batch[0].cap
	pixels := make([]float32, 0, n*len(first.pixels))
	var prompts [][]int32
	for _, t := range batch {
		pixels = append(pixels, t.cap.pixels...)
		if t.cap.prompt != nil {
			prompts = append(prompts, t.cap.prompt)
		}
	}
	cfg := first.cfg
	if first.randomSeed {
		cfg.Seed = rand.Uint64()
	}
	out, err := l.Model.GenerateCaptions(w.be, pixels, n, prompts, cfg)
	if err != nil {
		return err
	}
	if len(out.Sequences) != n {
		return fmt.Errorf("serve: %d captions for %d images", len(out.Sequences), n)
	}
	for i, t := range batch {
		t.cap.seq = out.Sequences[i][:out.Lengths[i]]
	}
	return nil
}

// drain fails every task left when the worker quits.
func (w *worker) drain() {
	for _, t := range w.pending {
		t.done <- errStopping
	}
	w.pending = nil
	for {
		select {
		case t := <-w.q:
			t.done <- errStopping
		default:
			return
		}
	}
}
