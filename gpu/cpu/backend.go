// Package cpu is the pure-Go reference backend: every kernel of gpu/calls.go
// executed on the host, synchronously, in fp32 (GEMM through gonum). It is the
// fallback when no Vulkan device exists and the twin every shader is tested
// against (gpu/paritytest).
//
// Importing the package registers the "cpu" driver with gpu.Register.
package cpu

import (
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"blip/gpu"
)

func init() {
	gpu.Register(gpu.Driver{
		Name: "cpu",
		Devices: func(gpu.Options) ([]gpu.DeviceInfo, error) {
			return []gpu.DeviceInfo{deviceInfo()}, nil
		},
		Open: func(_ gpu.Options, device int) (gpu.Backend, error) {
			if device > 0 {
				return nil, fmt.Errorf("cpu: no device %d (the CPU backend has one device, 0): %w", device, gpu.ErrNoDevice)
			}
			return New(), nil
		},
	})
}

func deviceInfo() gpu.DeviceInfo {
	return gpu.DeviceInfo{
		Index:        0,
		Name:         fmt.Sprintf("Go reference (%s, %d threads)", gemmEngine(), runtime.GOMAXPROCS(0)),
		Backend:      "cpu",
		Type:         gpu.CPU,
		Driver:       runtime.Version(),
		MemoryBytes:  physicalMemory(),
		MaxBindBytes: allocLimit(),
		Storage16:    true, // F16/BF16 views, widened in the kernels
		Timestamps:   true,
	}
}

// maxAlloc bounds a single allocation when the physical memory is unknown.
const maxAlloc = 1 << 40

// allocLimit is the largest buffer Alloc accepts: the physical memory.
func allocLimit() int64 {
	if m := physicalMemory(); m > 0 {
		return m
	}
	return maxAlloc
}

// Backend is the CPU gpu.Backend. Its methods are safe for concurrent use;
// calls execute synchronously inside Do. It implements gpu.Profiler with
// wall-clock times.
type Backend struct {
	mu        sync.Mutex
	info      gpu.DeviceInfo
	closed    bool
	live      map[*buffer]struct{}
	profiling bool
	prof      map[string]gpu.KernelTime
}

// New returns a CPU backend. gpu.Open(gpu.Options{Backend: "cpu"}) does the
// same.
func New() *Backend {
	return &Backend{info: deviceInfo(), live: map[*buffer]struct{}{}}
}

// buffer is a CPU allocation. The memory is a []uint32 so that every
// f32/i32 element is 4-byte aligned; f, i and by alias it.
type buffer struct {
	owner *Backend
	n     int64 // usable bytes as asked for; 0 once freed
	freed bool
	w     []uint32
	f     []float32
	i     []int32
	by    []byte
}

func (b *buffer) Bytes() int64       { return b.n }
func (b *buffer) Owner() gpu.Backend { return b.owner }

// Name implements gpu.Backend.
func (be *Backend) Name() string { return "cpu" }

// Info implements gpu.Backend.
func (be *Backend) Info() gpu.DeviceInfo { return be.info }

// Alloc implements gpu.Backend: a zero-filled buffer of n bytes.
func (be *Backend) Alloc(n int64) (gpu.Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("cpu: cannot allocate %d bytes", n)
	}
	if limit := allocLimit(); n > limit {
		return nil, fmt.Errorf("cpu: cannot allocate %d bytes (%.1f GiB): more than the %.1f GiB of memory (%.1f GiB free)",
			n, gib(n), gib(limit), gib(availableMemory()))
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.closed {
		return nil, fmt.Errorf("cpu: Alloc(%d) on a closed backend", n)
	}
	words := (n + 3) / 4
	b := &buffer{owner: be, n: n}
	if words > 0 {
		b.w = make([]uint32, words)
		p := unsafe.Pointer(unsafe.SliceData(b.w))
		b.f = unsafe.Slice((*float32)(p), words)
		b.i = unsafe.Slice((*int32)(p), words)
		b.by = unsafe.Slice((*byte)(p), n)
	}
	be.live[b] = struct{}{}
	return b, nil
}

func gib(n int64) float64 { return float64(n) / (1 << 30) }

// Free implements gpu.Backend. Freeing a buffer of another backend or
// freeing twice does nothing.
func (be *Backend) Free(gb gpu.Buffer) {
	b, ok := gb.(*buffer)
	if !ok || b.owner != be {
		return
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	delete(be.live, b)
	b.release()
}

func (b *buffer) release() {
	b.freed = true
	b.n = 0
	b.w, b.f, b.i, b.by = nil, nil, nil, nil
}

// own returns gb as a buffer of this backend, or an error.
func (be *Backend) own(gb gpu.Buffer) (*buffer, error) {
	if gb == nil {
		return nil, fmt.Errorf("nil buffer")
	}
	b, ok := gb.(*buffer)
	if !ok || b.owner != be {
		owner := "another backend"
		if o := gb.Owner(); o != nil {
			owner = fmt.Sprintf("backend %s (%p)", o.Name(), o)
		}
		return nil, fmt.Errorf("buffer belongs to %s, not to this cpu backend (%p)", owner, be)
	}
	if b.freed {
		return nil, fmt.Errorf("buffer was freed")
	}
	return b, nil
}

func (be *Backend) rangeCheck(op string, gb gpu.Buffer, off int64, n int) (*buffer, error) {
	b, err := be.own(gb)
	if err != nil {
		return nil, fmt.Errorf("cpu: %s: %w", op, err)
	}
	if off < 0 || off > b.n || int64(n) > b.n-off {
		return nil, fmt.Errorf("cpu: %s of bytes [%d, %d) outside a buffer of %d bytes", op, off, off+int64(n), b.n)
	}
	return b, nil
}

// Write implements gpu.Backend.
func (be *Backend) Write(gb gpu.Buffer, off int64, src []byte) error {
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.closed {
		return fmt.Errorf("cpu: Write on a closed backend")
	}
	b, err := be.rangeCheck("write", gb, off, len(src))
	if err != nil {
		return err
	}
	copy(b.by[off:], src)
	return nil
}

// Read implements gpu.Backend.
func (be *Backend) Read(gb gpu.Buffer, off int64, dst []byte) error {
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.closed {
		return fmt.Errorf("cpu: Read on a closed backend")
	}
	b, err := be.rangeCheck("read", gb, off, len(dst))
	if err != nil {
		return err
	}
	copy(dst, b.by[off:])
	return nil
}

// Do implements gpu.Backend: it checks every call (Call.Check, and that every
// view belongs to this backend) and, if all are valid, runs them in order
// before returning.
func (be *Backend) Do(calls ...gpu.Call) error {
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.closed {
		return fmt.Errorf("cpu: Do on a closed backend")
	}
	for i, c := range calls {
		if err := be.check(c); err != nil {
			if len(calls) > 1 {
				return fmt.Errorf("call %d of %d: %w", i, len(calls), err)
			}
			return err
		}
	}
	for _, c := range calls {
		if !be.profiling {
			run(deref(c))
			continue
		}
		start := time.Now()
		run(deref(c))
		k := be.prof[c.Kernel()]
		k.Calls++
		k.Nanos += float64(time.Since(start).Nanoseconds())
		be.prof[c.Kernel()] = k
	}
	return nil
}

// SetProfiling implements gpu.Profiler.
func (be *Backend) SetProfiling(on bool) {
	be.mu.Lock()
	defer be.mu.Unlock()
	be.profiling = on
	if on && be.prof == nil {
		be.prof = map[string]gpu.KernelTime{}
	}
}

// Profile implements gpu.Profiler: wall-clock time per kernel since the last
// call.
func (be *Backend) Profile() map[string]gpu.KernelTime {
	be.mu.Lock()
	defer be.mu.Unlock()
	p := be.prof
	be.prof = map[string]gpu.KernelTime{}
	if p == nil {
		p = map[string]gpu.KernelTime{}
	}
	return p
}

func (be *Backend) check(c gpu.Call) error {
	if c == nil {
		return fmt.Errorf("cpu: nil call")
	}
	c = deref(c)
	views, ok := namedViews(c)
	if !ok {
		return fmt.Errorf("cpu: %s: unsupported call type %T", c.Kernel(), c)
	}
	// Ownership first: Check compares views with each other, and would
	// report a freed buffer as one of 0 bytes.
	for _, v := range views {
		if v.v.Buf == nil {
			continue
		}
		if _, err := be.own(v.v.Buf); err != nil {
			return &gpu.ShapeError{Kernel: c.Kernel(), Msg: fmt.Sprintf("%s %v: %v", v.name, v.v, err)}
		}
	}
	return c.Check()
}

// Sync implements gpu.Backend; calls have already run.
func (be *Backend) Sync() error {
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.closed {
		return fmt.Errorf("cpu: Sync on a closed backend")
	}
	return nil
}

// Close implements gpu.Backend: it frees every live buffer.
func (be *Backend) Close() error {
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.closed {
		return nil
	}
	be.closed = true
	for b := range be.live {
		b.release()
	}
	be.live = nil
	return nil
}

type namedView struct {
	name string
	v    gpu.View
}

// deref turns a pointer to a call struct into the struct.
func deref(c gpu.Call) gpu.Call {
	switch p := c.(type) {
	case *gpu.Gemm:
		return *p
	case *gpu.Unary:
		return *p
	case *gpu.Binary:
		return *p
	case *gpu.Reduce:
		return *p
	case *gpu.Softmax:
		return *p
	case *gpu.LayerNorm:
		return *p
	case *gpu.Embedding:
		return *p
	case *gpu.ArgMax:
		return *p
	case *gpu.TopK:
		return *p
	case *gpu.Permute:
		return *p
	}
	if rv := reflect.ValueOf(c); rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().Kind() == reflect.Struct {
		if v, ok := rv.Elem().Interface().(gpu.Call); ok {
			return v
		}
	}
	return c
}

// twins holds the CPU twins of calls declared outside calls.go (such as
// calls_train.go): each gpu/cpu/<kernel>.go file adds its function in init.
// They get the call by value; their views are found by reflection.
var twins = map[string]func(gpu.Call){}

var viewType = reflect.TypeOf(gpu.View{})

var callType = reflect.TypeOf((*gpu.Call)(nil)).Elem()

// reflectViews lists the View fields of a call struct, and of the calls it
// holds (gpu.GemmNorm's G and L, named "G.A" and so on).
func reflectViews(c gpu.Call) []namedView {
	rv := reflect.ValueOf(c)
	var out []namedView
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		switch {
		case f.Type == viewType:
			out = append(out, namedView{f.Name, rv.Field(i).Interface().(gpu.View)})
		case f.Type.Kind() == reflect.Struct && f.Type.Implements(callType):
			for _, v := range reflectViews(rv.Field(i).Interface().(gpu.Call)) {
				out = append(out, namedView{f.Name + "." + v.name, v.v})
			}
		}
	}
	return out
}

func namedViews(c gpu.Call) ([]namedView, bool) {
	switch c := c.(type) {
	case gpu.Gemm:
		return []namedView{{"A", c.A}, {"B", c.B}, {"C", c.C}, {"Bias", c.Bias}}, true
	case gpu.Unary:
		return []namedView{{"X", c.X}, {"Y", c.Y}}, true
	case gpu.Binary:
		return []namedView{{"A", c.A}, {"B", c.B}, {"C", c.C}}, true
	case gpu.Reduce:
		return []namedView{{"X", c.X}, {"Y", c.Y}}, true
	case gpu.Softmax:
		return []namedView{{"X", c.X}, {"Y", c.Y}, {"Mask", c.Mask}}, true
	case gpu.LayerNorm:
		return []namedView{{"X", c.X}, {"Y", c.Y}, {"Gamma", c.Gamma}, {"Beta", c.Beta}, {"Mean", c.Mean}, {"Rstd", c.Rstd}, {"R", c.R}, {"S", c.S}}, true
	case gpu.Embedding:
		return []namedView{{"Table", c.Table}, {"Ids", c.Ids}, {"Y", c.Y}}, true
	case gpu.ArgMax:
		return []namedView{{"X", c.X}, {"Y", c.Y}, {"NLL", c.NLL}}, true
	case gpu.TopK:
		return []namedView{{"X", c.X}, {"Vals", c.Vals}, {"Idx", c.Idx}}, true
	case gpu.Permute:
		return []namedView{{"X", c.X}, {"Y", c.Y}}, true
	}
	if _, ok := twins[c.Kernel()]; ok && reflect.ValueOf(c).Kind() == reflect.Struct {
		return reflectViews(c), true
	}
	return nil, false
}

// run executes one checked call.
func run(c gpu.Call) {
	switch c := c.(type) {
	case gpu.Gemm:
		act16(func() { gemm(c) }, []*gpu.View{&c.A}, &c.C)
	case gpu.Unary:
		act16(func() { unary(c) }, nil, &c.Y)
	case gpu.Binary:
		binary(c)
	case gpu.Reduce:
		reduce(c)
	case gpu.Softmax:
		softmax(c)
	case gpu.Attention:
		act16(func() { attention(c) }, []*gpu.View{&c.Q, &c.K, &c.V}, &c.O)
	case gpu.AttentionBackward:
		act16(func() { attentionBackward(c) }, []*gpu.View{&c.Q, &c.K, &c.V})
	case gpu.LayerNorm:
		act16(func() { layerNorm(c) }, nil, &c.Y)
	case gpu.Embedding:
		embedding(c)
	case gpu.ArgMax:
		argMax(c)
	case gpu.TopK:
		topK(c)
	case gpu.Permute:
		permute(c)
	default:
		if f, ok := twins[c.Kernel()]; ok {
			f(c)
			return
		}
		panic(fmt.Sprintf("cpu: no kernel for %T", c))
	}
}

// f32 returns the elements of a checked f32 view.
func f32(v gpu.View) []float32 {
	if v.Buf == nil {
		return nil
	}
	return v.Buf.(*buffer).f[v.Off : v.Off+v.Len]
}

// i32 returns the elements of a checked i32 view.
func i32(v gpu.View) []int32 {
	if v.Buf == nil {
		return nil
	}
	return v.Buf.(*buffer).i[v.Off : v.Off+v.Len]
}

// u32 returns the elements of a checked 4-byte view as raw words.
func u32(v gpu.View) []uint32 {
	return v.Buf.(*buffer).w[v.Off : v.Off+v.Len]
}

// minParallel is the number of elements (roughly: of work) below which a
// kernel runs on the calling goroutine.
const minParallel = 1 << 15

// parallel runs f over [0, n) split into contiguous chunks, one per
// GOMAXPROCS, when work (the elements touched) is large enough to pay for the
// goroutines; otherwise it calls f(0, n).
func parallel(n int, work int64, f func(lo, hi int)) {
	p := runtime.GOMAXPROCS(0)
	if p > n {
		p = n
	}
	if p <= 1 || work < minParallel {
		f(0, n)
		return
	}
	chunk := (n + p - 1) / p
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}
