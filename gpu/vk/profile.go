package vk

import (
	"reflect"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"

	"blip/gpu"
)

// Profiling writes a timestamp pair around every dispatch and separates
// dispatches with barriers, so each kernel's time is its own (at the price of
// overlap): use it to find the limiter, not to measure throughput.

const maxTimed = maxPerCB

type profiler struct {
	on    bool
	times map[string]gpu.KernelTime
}

// SetProfiling implements gpu.Profiler.
func (d *Device) SetProfiling(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if on && !d.info.Timestamps {
		return
	}
	d.prof.on = on
	if d.prof.times == nil {
		d.prof.times = map[string]gpu.KernelTime{}
	}
}

// Profile implements gpu.Profiler.
func (d *Device) Profile() map[string]gpu.KernelTime {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.prof.times
	d.prof.times = map[string]gpu.KernelTime{}
	return t
}

func (p *profiler) prepare(d *Device, s *cmdSlot) error {
	if s.query == vk.NullQueryPool {
		ci := vk.QueryPoolCreateInfo{
			SType:      vk.StructureTypeQueryPoolCreateInfo,
			QueryType:  vk.QueryTypeTimestamp,
			QueryCount: 2 * maxTimed,
		}
		var q vk.QueryPool
		if err := check("vkCreateQueryPool", vk.CreateQueryPool(d.dev, &ci, nil, &q)); err != nil {
			return err
		}
		s.query = q
	}
	vk.CmdResetQueryPool(s.cb, s.query, 0, 2*maxTimed)
	return nil
}

func (p *profiler) before(s *cmdSlot, name string) {
	vk.CmdWriteTimestamp(s.cb, vk.PipelineStageTopOfPipeBit, s.query, uint32(2*len(s.names)))
	s.names = append(s.names, name)
}

func (p *profiler) after(s *cmdSlot) {
	vk.CmdWriteTimestamp(s.cb, vk.PipelineStageBottomOfPipeBit, s.query, uint32(2*len(s.names)-1))
}

func (p *profiler) collect(d *Device, s *cmdSlot) {
	n := len(s.names)
	if n == 0 || s.query == vk.NullQueryPool {
		return
	}
	ts := make([]uint64, 2*n)
	res := vk.GetQueryPoolResults(d.dev, s.query, 0, uint32(2*n), uint(16*n), unsafe.Pointer(&ts[0]), 8,
		vk.QueryResultFlags(vk.QueryResult64Bit|vk.QueryResultWaitBit))
	if res != vk.Success {
		return
	}
	mask := uint64(1)<<d.phys.tsBits - 1
	if d.phys.tsBits >= 64 {
		mask = ^uint64(0)
	}
	period := float64(d.phys.limits.TimestampPeriod)
	if p.times == nil {
		p.times = map[string]gpu.KernelTime{}
	}
	for i, name := range s.names {
		dt := (ts[2*i+1] - ts[2*i]) & mask
		kt := p.times[name]
		kt.Calls++
		kt.Nanos += float64(dt) * period
		p.times[name] = kt
	}
	s.names = s.names[:0]
}

func (p *profiler) destroy(d *Device) {}

var (
	viewType = reflect.TypeOf(gpu.View{})
	callType = reflect.TypeOf((*gpu.Call)(nil)).Elem()
)

// forEachView calls fn for every gpu.View field of a call struct, and of
// the calls a call holds (gpu.GemmNorm's G and L, named "G.A" and so on).
func forEachView(c gpu.Call, fn func(name string, v gpu.View)) {
	rv := reflect.ValueOf(c)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return
	}
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		switch {
		case f.Type == viewType:
			fn(f.Name, rv.Field(i).Interface().(gpu.View))
		case f.Type.Kind() == reflect.Struct && f.Type.Implements(callType):
			forEachView(rv.Field(i).Interface().(gpu.Call), func(name string, v gpu.View) { fn(f.Name+"."+name, v) })
		}
	}
}
