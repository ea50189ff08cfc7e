package gpu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Options choose a backend and device.
type Options struct {
	// Backend is "auto" (default), "vulkan" or "cpu".
	Backend string
	// Device is an index into the list `blip devices` prints; -1 picks the
	// best (discrete > integrated > virtual > cpu).
	Device int
	// Validate enables the Khronos validation layer; any message it reports
	// becomes an error from Sync or Close.
	Validate bool
	// Log receives one-line notices (such as falling back to the CPU
	// backend). Nil means os.Stderr.
	Log io.Writer
}

// Driver is what a backend package registers: it lists devices and opens one.
type Driver struct {
	Name    string
	Devices func(o Options) ([]DeviceInfo, error)
	Open    func(o Options, device int) (Backend, error)
}

var (
	mu      sync.Mutex
	drivers = map[string]Driver{}
)

// Register makes a backend available to Open. Backend packages call it from
// init, so a program imports the ones it wants (blank imports).
func Register(d Driver) {
	mu.Lock()
	defer mu.Unlock()
	drivers[d.Name] = d
}

// Drivers lists the registered backend names, sorted.
func Drivers() []string {
	mu.Lock()
	defer mu.Unlock()
	var names []string
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func driver(name string) (Driver, bool) {
	mu.Lock()
	defer mu.Unlock()
	d, ok := drivers[name]
	return d, ok
}

// ErrNoDevice is returned (wrapped) when a backend finds no usable device.
var ErrNoDevice = errors.New("no device")

// EnvDefaults fills unset options from the environment: BLIP_BACKEND,
// BLIP_DEVICE and BLIP_VALIDATE=1.
func (o Options) EnvDefaults() (Options, error) {
	if o.Backend == "" {
		o.Backend = os.Getenv("BLIP_BACKEND")
	}
	if o.Backend == "" {
		o.Backend = "auto"
	}
	if s := os.Getenv("BLIP_DEVICE"); s != "" && o.Device < 0 {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			return o, fmt.Errorf("BLIP_DEVICE=%q: want a device index (see `blip devices`)", s)
		}
		o.Device = n
	}
	if os.Getenv("BLIP_VALIDATE") == "1" {
		o.Validate = true
	}
	return o, nil
}

// Open returns a backend chosen by o. With Backend "auto" it picks the best
// Vulkan device, and falls back to the CPU backend with a one-line notice when
// no Vulkan device exists. When the only Vulkan devices are themselves CPU
// implementations (Mesa lavapipe), auto also picks the CPU backend, which is
// faster on the same cores (`blip bench kernels` measures both); --backend
// vulkan or --device N still selects them.
func Open(o Options) (Backend, error) {
	log := o.Log
	if log == nil {
		log = os.Stderr
	}
	switch o.Backend {
	case "", "auto":
		if d, ok := driver("vulkan"); ok {
			if o.Device < 0 {
				if ds, err := d.Devices(o); err == nil && len(ds) > 0 {
					if best := ds[PickBest(ds)]; best.Type == CPU {
						fmt.Fprintf(log, "blip: only a CPU Vulkan device (%s); using the CPU backend, which is faster here (--backend vulkan to override)\n", best.Name)
						return openCPU(o)
					}
				}
			}
			b, err := d.Open(o, o.Device)
			if err == nil {
				return b, nil
			}
			if o.Device >= 0 && !errors.Is(err, ErrNoDevice) {
				return nil, err
			}
			fmt.Fprintf(log, "blip: no Vulkan device (%v); using the CPU backend\n", err)
		}
		return openCPU(o)
	default:
		d, ok := driver(o.Backend)
		if !ok {
			return nil, fmt.Errorf("gpu: unknown backend %q (have %s)", o.Backend, strings.Join(Drivers(), ", "))
		}
		dev := o.Device
		if dev < 0 {
			dev = -1
		}
		return d.Open(o, dev)
	}
}

// ListDevices returns the devices of every registered backend.
func ListDevices(o Options) ([]DeviceInfo, []error) {
	var out []DeviceInfo
	var errs []error
	for _, n := range Drivers() {
		d, _ := driver(n)
		ds, err := d.Devices(o)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			continue
		}
		out = append(out, ds...)
	}
	return out, errs
}

// PickBest returns the index of the best device: discrete > integrated >
// virtual > cpu > other, first on ties. -1 if the list is empty.
func PickBest(ds []DeviceInfo) int {
	best := -1
	for i, d := range ds {
		if best < 0 || d.Type < ds[best].Type {
			best = i
		}
	}
	return best
}

func openCPU(o Options) (Backend, error) {
	d, ok := driver("cpu")
	if !ok {
		return nil, fmt.Errorf("gpu: no backend registered")
	}
	return d.Open(o, 0)
}
