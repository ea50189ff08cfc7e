package vk

import (
	"os"

	"blip/gpu"
)

// gemm_norm: a linear layer and the LayerNorm after it. Where the product
// runs on gemm_rows.comp (decoding's few rows) both run as one dispatch of
// gemm_rows_ln.comp, whose last workgroup of a block of rows normalises
// them: at base size that is 3 of the 14 dispatches of a decoder layer per
// token, and the barriers between them. Elsewhere the call is the gemm
// kernel's dispatches and then layernorm's, as the two calls would be.

// BLIP_GEMM_NORM=0 keeps the two dispatches (for comparisons).
var gemmNormOff = os.Getenv("BLIP_GEMM_NORM") == "0"

// normBinds is the bindings of gemm_rows_ln.comp.
const normBinds = 10

func init() { kernels["gemm_norm"] = gemmNormKernel }

func gemmNormKernel(d *Device, c gpu.Call) ([]dispatch, error) {
	gn := callAs[gpu.GemmNorm](c)
	if d.fusesNorm(gn) {
		ds, err := d.rowsNormDispatch(gn)
		if err != nil {
			return nil, err
		}
		return []dispatch{ds}, nil
	}
	g, err := gemmKernel(d, gn.G)
	if err != nil {
		return nil, err
	}
	l, err := kernels["layernorm"](d, gn.L)
	if err != nil {
		return nil, err
	}
	return append(g, l...), nil
}

// fusesNorm reports whether gn runs as one dispatch: its product takes
// gemm_rows.comp, the LayerNorm saves no statistics (inference), and the
// device binds ten buffers.
func (d *Device) fusesNorm(gn gpu.GemmNorm) bool {
	if gemmNormOff || d.maxBinds < normBinds || gn.L.Mean.Len > 0 || gn.L.Rstd.Len > 0 {
		return false
	}
	if d.need16("gemm", gn.G.B) != nil {
		return false
	}
	s := gemmShapeOf(gn.G)
	return d.useRows(&s)
}

// rowsNormDispatch is gn as one dispatch of gemm_rows_ln.comp.
func (d *Device) rowsNormDispatch(gn gpu.GemmNorm) (dispatch, error) {
	g, l := gn.G, gn.L
	alpha := g.Alpha
	if alpha == 0 {
		alpha = 1
	}
	s := gemmShapeOf(g)
	ds := d.rowsDispatch("gemm_rows_ln", &s, alpha, g.Beta, g.Act)
	cnt, err := d.counterBuf(ceilDiv(rowsMaxM, rowsM))
	if err != nil {
		return dispatch{}, err
	}
	n := int64(g.M) * int64(g.N)
	// The kernel reads C + O: O is L's operand that is not C (X and R
	// commute: one fp32 addition).
	o := l.R
	if gn.CIsResidual() {
		o = l.X
	}
	var flags uint32
	if o.Buf != nil {
		o = o.Slice(0, n)
		flags |= 1
	}
	var sum gpu.View
	if l.S.Buf != nil {
		sum = l.S.Slice(0, n)
		flags |= 2
	}
	y := l.Y.Slice(0, n)
	// Each block of rows normalises when its own workgroups are done,
	// unless the outputs overlap A, which other blocks may still be
	// reading: then the last of all normalises every row.
	if !y.Overlaps(g.A) && !sum.Overlaps(g.A) {
		flags |= 4
	}
	gamma, beta := l.Gamma.Slice(0, int64(l.Cols)), l.Beta.Slice(0, int64(l.Cols))
	ds.binds = append(ds.binds, rd(o), rd(gamma), rd(beta), wr(y), wr(sum), wr(cnt))
	ds.push = append(ds.push, offIfSet(d, o), d.elemOff(gamma), d.elemOff(beta), d.elemOff(y), offIfSet(d, sum),
		flags, f32bits(l.Eps), d.elemOff(cnt))
	return ds, nil
}
