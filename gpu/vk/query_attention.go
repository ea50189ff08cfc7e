package vk

import (
	"os"

	"blip/gpu"
)

// query_attention: a decoder's cross-attention query projection and the
// cross-attention. Where the attention takes the split kernel (decoding's
// few queries) both run in its dispatch, attention_split_one_q.comp, each
// workgroup projecting its head's queries from the hidden states: at base
// size one of the 8 dispatches of a decoder layer per token, and the
// barrier before it. Elsewhere the call is the gemm kernel's dispatches
// and then the attention's, as the two calls would be.

// BLIP_ATTN_QPROJ=0 keeps the two (for comparisons).
var queryProjOff = os.Getenv("BLIP_ATTN_QPROJ") == "0"

// Bindings of attention_split_one_q.comp, and the most hidden units it
// stages (its CMAX).
const (
	queryBinds   = 10
	queryMaxCols = 1024
)

func init() { kernels["query_attention"] = queryAttentionKernel }

func queryAttentionKernel(d *Device, c gpu.Call) ([]dispatch, error) {
	qa := callAs[gpu.QueryAttention](c)
	s := qa.A.AttentionShape
	ls := s.Layouts()
	ts := []attnTensorView{{"Q", qa.A.Q, ls[0], s.Tq}, {"K", qa.A.K, ls[1], s.Tk}, {"V", qa.A.V, ls[2], s.Tk}, {"O", qa.A.O, ls[3], s.Tq}}
	fused, err := d.fusesQuery(qa, ts)
	if err != nil {
		return nil, err
	}
	if fused {
		return attentionSplit(d, qa.A, s.B, ts, &qa.P)
	}
	g, err := gemmKernel(d, qa.P)
	if err != nil {
		return nil, err
	}
	a, err := attentionKernel(d, qa.A)
	if err != nil {
		return nil, err
	}
	return append(g, a...), nil
}

// fusesQuery reports whether qa (its attention's tensors ts) runs as the
// split attention's dispatches with the projection in them: the attention
// takes the split kernel with every batch in one dispatch, the device
// binds ten buffers, the hidden states fit the kernel's shared rows and a
// binding, and the hidden states, the weight's rows and their offsets
// allow vec4 loads.
func (d *Device) fusesQuery(qa gpu.QueryAttention, ts []attnTensorView) (bool, error) {
	p, s := qa.P, qa.A.AttentionShape
	if queryProjOff || d.maxBinds < queryBinds || !useSplit(s) || p.K > queryMaxCols || p.K%4 != 0 {
		return false, nil
	}
	_, _, ldb, _, _, _, _ := p.Dims()
	if ldb%4 != 0 || d.elemOff(p.A)%4 != 0 || d.elemOff(p.B)%4 != 0 {
		return false, nil
	}
	nb, err := d.attnBatches("query_attention", s, ts)
	if err != nil {
		return false, err
	}
	x := int64(s.B) * int64(s.Tq) * int64(p.K) * 4
	return nb == s.B && x <= d.bindLimit() && p.B.Bytes() <= d.bindLimit(), nil
}
