package dataset

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
)

// Position addresses a sample in a Loader's sequence: the epoch and the
// number of source samples already consumed in that epoch (in the epoch's
// possibly shuffled order, counting samples whose decode failed).
type Position struct {
	Epoch int
	Index int
}

// Options configures a Loader.
type Options struct {
	// Workers running the decode function (default 1).
	Workers int
	// Prefetch is how many samples may be in flight ahead of the consumer
	// (default 2*Workers).
	Prefetch int
	// Epochs to run (default 1).
	Epochs int
	// Shuffle permutes Indexed datasets each epoch with a permutation
	// derived from (Seed, epoch) only. Streaming datasets are never
	// shuffled.
	Shuffle bool
	Seed    uint64
	// Strict makes the first decode failure fatal.
	Strict bool
	// Start resumes at a saved Position (as returned by Loader.Position).
	Start Position
}

// Item is one decoded result.
type Item[T any] struct {
	Value  T
	Sample Sample
	// Pos is the position of this sample; resuming at Next() of the
	// loader after this item means starting at Pos.Index+1.
	Pos Position
}

// Loader decodes samples from a Dataset on several workers and yields
// them in source order, whatever the number of workers.
type Loader[T any] struct {
	ds     Dataset
	fn     func(Sample, Position) (T, error)
	opt    Options
	order  chan chan result[T]
	jobs   chan job[T]
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	pos    Position
	stats  syncStats
	failed error
	closed bool
}

type result[T any] struct {
	item Item[T]
	err  error // decode error
	fail error // fatal (source) error
	eoe  bool  // end of epoch marker
}

type job[T any] struct {
	s   Sample
	pos Position
	out chan result[T]
}

// NewLoader starts a loader. fn must be safe for concurrent use. Call
// Close when done early.
func NewLoader[T any](ds Dataset, fn func(Sample) (T, error), opt Options) (*Loader[T], error) {
	return NewLoaderPos(ds, func(s Sample, _ Position) (T, error) { return fn(s) }, opt)
}

// NewLoaderPos is NewLoader for a decode function that also gets the
// sample's position, so that random augmentation can be seeded by (epoch,
// index) and differ between epochs while staying reproducible.
func NewLoaderPos[T any](ds Dataset, fn func(Sample, Position) (T, error), opt Options) (*Loader[T], error) {
	if opt.Workers <= 0 {
		opt.Workers = 1
	}
	if opt.Prefetch <= 0 {
		opt.Prefetch = 2 * opt.Workers
	}
	if opt.Epochs <= 0 {
		opt.Epochs = 1
	}
	if opt.Start.Epoch < 0 || opt.Start.Index < 0 {
		return nil, fmt.Errorf("dataset: invalid start position %+v", opt.Start)
	}
	if _, ok := ds.(Indexed); opt.Shuffle && !ok {
		return nil, errors.New("dataset: shuffle needs an index-addressable dataset")
	}
	l := &Loader[T]{
		ds: ds, fn: fn, opt: opt,
		order: make(chan chan result[T], opt.Prefetch),
		jobs:  make(chan job[T]),
		done:  make(chan struct{}),
		pos:   opt.Start,
	}
	for range opt.Workers {
		l.wg.Add(1)
		go l.work()
	}
	go l.produce()
	return l, nil
}

// Permutation returns the order of an n-sample epoch for a seed; it
// depends only on (n, seed, epoch).
func Permutation(n int, seed uint64, epoch int) []int {
	r := rand.New(rand.NewPCG(seed, uint64(epoch)^0x9e3779b97f4a7c15))
	return r.Perm(n)
}

func (l *Loader[T]) work() {
	defer l.wg.Done()
	for j := range l.jobs {
		v, err := l.fn(j.s, j.pos)
		j.out <- result[T]{item: Item[T]{Value: v, Sample: j.s, Pos: j.pos}, err: err}
	}
}

// emit queues a result channel; false when the loader is closed.
func (l *Loader[T]) emit(c chan result[T]) bool {
	select {
	case l.order <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *Loader[T]) fatal(err error) {
	c := make(chan result[T], 1)
	c <- result[T]{fail: err}
	l.emit(c)
}

func (l *Loader[T]) produce() {
	defer close(l.order)
	defer close(l.jobs)
	for epoch := l.opt.Start.Epoch; epoch < l.opt.Epochs; epoch++ {
		start := 0
		if epoch == l.opt.Start.Epoch {
			start = l.opt.Start.Index
		}
		if !l.runEpoch(epoch, start) {
			return
		}
		c := make(chan result[T], 1)
		c <- result[T]{eoe: true, item: Item[T]{Pos: Position{Epoch: epoch + 1}}}
		if !l.emit(c) {
			return
		}
	}
}

func (l *Loader[T]) send(s Sample, pos Position) bool {
	c := make(chan result[T], 1)
	if !l.emit(c) {
		return false
	}
	select {
	case l.jobs <- job[T]{s: s, pos: pos, out: c}:
		return true
	case <-l.done:
		return false
	}
}

func (l *Loader[T]) runEpoch(epoch, start int) bool {
	if ix, ok := l.ds.(Indexed); ok {
		n := ix.Len()
		var perm []int
		if l.opt.Shuffle {
			perm = Permutation(n, l.opt.Seed, epoch)
		}
		for i := start; i < n; i++ {
			k := i
			if perm != nil {
				k = perm[i]
			}
			s, err := ix.At(k)
			if err != nil {
				l.fatal(err)
				return false
			}
			if !l.send(s, Position{epoch, i}) {
				return false
			}
		}
		return true
	}
	src, err := l.ds.Open()
	if err != nil {
		l.fatal(err)
		return false
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	if r, ok := src.(StatsReporter); ok {
		defer func() {
			l.stats.mu.Lock()
			l.stats.s.Merge(statsSource(r.Stats()))
			l.stats.mu.Unlock()
		}()
	}
	for i := 0; ; i++ {
		s, err := src.Next()
		if err == io.EOF {
			return true
		}
		if err != nil {
			l.fatal(err)
			return false
		}
		if i < start {
			continue
		}
		if !l.send(s, Position{epoch, i}) {
			return false
		}
	}
}

// statsSource drops Seen from source stats (the loader counts samples
// itself) but keeps the structural skips.
func statsSource(s Stats) Stats {
	s.Seen = 0
	return s
}

// Next returns the next decoded item in order, skipping (and counting)
// samples whose decode failed, or io.EOF after the last epoch. In Strict
// mode a decode failure is returned as an error naming the sample, and
// the loader stops.
func (l *Loader[T]) Next() (Item[T], error) {
	if l.failed != nil {
		return Item[T]{}, l.failed
	}
	if l.closed {
		return Item[T]{}, io.EOF
	}
	for {
		c, ok := <-l.order
		if !ok {
			return Item[T]{}, io.EOF
		}
		r := <-c
		if r.fail != nil {
			l.failed = r.fail
			l.Close()
			return Item[T]{}, r.fail
		}
		if r.eoe {
			l.pos = r.item.Pos
			continue
		}
		l.pos = Position{r.item.Pos.Epoch, r.item.Pos.Index + 1}
		l.stats.mu.Lock()
		l.stats.s.Seen++
		if r.err != nil {
			l.stats.s.SkipDetail(r.item.Sample.Key, "decode failed", r.err.Error())
		}
		l.stats.mu.Unlock()
		if r.err != nil {
			if l.opt.Strict {
				l.failed = fmt.Errorf("dataset: sample %s (epoch %d, index %d): %w",
					r.item.Sample.Key, r.item.Pos.Epoch, r.item.Pos.Index, r.err)
				l.Close()
				return Item[T]{}, l.failed
			}
			continue
		}
		return r.item, nil
	}
}

// Position returns where a new loader should Start to continue right
// after the last item returned by Next.
func (l *Loader[T]) Position() Position { return l.pos }

// Stats returns the loader's counts: samples consumed, decode failures
// (reason "decode failed") and structural skips reported by streaming
// sources when the producer (running up to Prefetch samples ahead of
// Next) finishes each epoch of them.
func (l *Loader[T]) Stats() Stats { return l.stats.get() }

// Close stops the workers; it is safe to call more than once. Next
// returns io.EOF after Close. Close must not run concurrently with Next.
func (l *Loader[T]) Close() {
	l.closed = true
	l.once.Do(func() {
		close(l.done)
		go func() {
			// Drain so the producer and workers can finish.
			for range l.order {
			}
		}()
	})
}
