package vk

import (
	"fmt"
	"math"

	"blip/gpu"
)

// Helpers shared by the kernel files (<kernel>.go): call unwrapping, binding
// limits, workgroup sizes and grids.

// callAs returns c as a T, whether it was passed by value or by pointer.
func callAs[T gpu.Call](c gpu.Call) T {
	if v, ok := c.(T); ok {
		return v
	}
	if p, ok := any(c).(*T); ok && p != nil {
		return *p
	}
	panic(fmt.Sprintf("vk: %T is not a %T", c, *new(T)))
}

// bindLimit is the most bytes a view may span so that its binding, which
// starts up to bindAlign-1 bytes before the view, stays within maxBind.
func (d *Device) bindLimit() int64 {
	return d.maxBind - d.bindAlign
}

// limitElems is bindLimit in 4-byte elements, rounded down to a multiple of 4
// so that chunks of a view keep their vec4 alignment.
func (d *Device) limitElems() int64 {
	return d.bindLimit() / 4 &^ 3
}

// flatChunk is how many elements one dispatch of an elementwise kernel
// with wg invocations per workgroup may cover: within a binding and within
// the grid (one element per invocation).
func (d *Device) flatChunk(wg uint32) int64 {
	return min(d.limitElems(), d.maxGridGroups()*int64(wg)&^3)
}

// flatDispatches splits n elements into the ranges one dispatch of an
// elementwise kernel (one invocation per element) may cover, and has build
// make the dispatch of each range [s, s+m) for workgroups of wg and the
// given grid.
func (d *Device) flatDispatches(kernel string, n int64, build func(s, m int64, wg uint32, groups [3]uint32) dispatch) ([]dispatch, error) {
	wg := d.flatThreads()
	chunk := d.flatChunk(wg)
	var out []dispatch
	for s := int64(0); s < n; s += chunk {
		m := min(chunk, n-s)
		g, err := d.grid(kernel, ceilDiv(m, int64(wg)))
		if err != nil {
			return nil, err
		}
		out = append(out, build(s, m, wg, g))
	}
	return out, nil
}

// isCPU tells CPU Vulkan drivers (lavapipe) from GPUs: they get smaller
// workgroups and gemm_cpu.comp.
func (d *Device) isCPU() bool {
	return d.info.Type == gpu.CPU
}

// rowThreads is the workgroup size of the one-workgroup-per-row kernels.
func (d *Device) rowThreads() uint32 {
	if d.isCPU() {
		return 64
	}
	return 256
}

// flatThreads is the workgroup size of the elementwise kernels.
func (d *Device) flatThreads() uint32 {
	if d.isCPU() {
		return 64
	}
	return 256
}

// grid spreads n workgroups over the x and y dimensions of a dispatch
// (shaders compute gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x
// and skip indices >= n).
func (d *Device) grid(kernel string, n int64) ([3]uint32, error) {
	if n <= 0 {
		n = 1
	}
	mx := int64(d.maxGroups[0])
	x := min(n, mx)
	y := (n + x - 1) / x
	if y > int64(d.maxGroups[1]) {
		return [3]uint32{}, fmt.Errorf("%s: %d workgroups exceed the device's %dx%d grid", kernel, n, d.maxGroups[0], d.maxGroups[1])
	}
	return [3]uint32{uint32(x), uint32(y), 1}, nil
}

// maxGridGroups is the number of workgroups grid can spread.
func (d *Device) maxGridGroups() int64 {
	return int64(d.maxGroups[0]) * int64(d.maxGroups[1])
}

// rowChunk is how many rows of rowElems 4-byte elements (the largest per-row
// footprint among a row kernel's views) one dispatch may cover, or an error
// when a single row exceeds a binding.
func (d *Device) rowChunk(kernel string, rows int, rowElems int64) (int, error) {
	if rowElems*4 > d.bindLimit() {
		return 0, fmt.Errorf("%s: one row of %d elements (%d bytes) exceeds the device's storage-buffer binding limit of %d bytes", kernel, rowElems, rowElems*4, d.maxBind)
	}
	n := d.bindLimit() / (rowElems * 4)
	n = min(n, d.maxGridGroups(), int64(rows))
	return int(max(n, 1)), nil
}

// f32bits is a float push constant.
func f32bits(f float32) uint32 {
	return math.Float32bits(f)
}

// b2u is a flag push or specialization constant.
func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// rowView is one binding of a row kernel: perRow elements per row (the row
// length for matrices, 1 for per-row outputs).
type rowView struct {
	v      gpu.View
	perRow int64
	write  bool
}

func rowIn(v gpu.View, perRow int64) rowView  { return rowView{v, perRow, false} }
func rowOut(v gpu.View, perRow int64) rowView { return rowView{v, perRow, true} }

// rowDispatches runs a one-workgroup-per-row shader over row ranges that fit
// one binding and the grid. Bindings follow views; push constants are (rows
// in the range, cols, each binding's element offset, extra...), the layout
// the row shaders share.
func (d *Device) rowDispatches(shader string, rows int, cols int64, views []rowView, extra ...uint32) ([]dispatch, error) {
	widest := int64(1)
	for _, rv := range views {
		widest = max(widest, rv.perRow)
	}
	chunk, err := d.rowChunk(shader, rows, widest)
	if err != nil {
		return nil, err
	}
	wg := d.rowThreads()
	var out []dispatch
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		g, err := d.grid(shader, int64(n))
		if err != nil {
			return nil, err
		}
		binds := make([]binding, len(views))
		push := []uint32{uint32(n), uint32(cols)}
		for i, rv := range views {
			v := rv.v.Slice(int64(r0)*rv.perRow, int64(n)*rv.perRow)
			binds[i] = binding{v: v, write: rv.write}
			push = append(push, d.elemOff(v))
		}
		out = append(out, dispatch{shader: shader, spec: []uint32{wg}, binds: binds, push: append(push, extra...), groups: g})
	}
	return out, nil
}
