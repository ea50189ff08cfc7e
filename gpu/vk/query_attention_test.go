package vk

import (
	"fmt"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/paritytest"
)

// TestQueryAttentionLowering checks which query_attention cases run as the
// split attention with the projection in it (every dispatch
// attention_split_one_q.comp) and which as the product and the attention,
// and that both forms match the CPU backend: with BLIP_ATTN_QPROJ=0 every
// case runs as the two.
func TestQueryAttentionLowering(t *testing.T) {
	d := openTest(t)
	defer func() { queryProjOff = false }()
	ref := cpu.New()
	defer ref.Close()
	twoCalls := map[string]bool{"rows5": true, "c30": true, "x_off1": true, "c1028": true}
	n := 0
	for _, c := range paritytest.Cases() {
		if c.Kernel != "query_attention" {
			continue
		}
		n++
		name := strings.TrimPrefix(c.Name, "query_attention/")
		qa := sizedCall(c).(gpu.QueryAttention)
		for _, off := range []bool{false, true} {
			queryProjOff = off
			ds, err := queryAttentionKernel(d, qa)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			fused := 0
			for _, x := range ds {
				if x.shader == "attention_split_one_q" {
					fused++
				}
			}
			want := !off && !twoCalls[name]
			if (want && fused != len(ds)) || (!want && fused != 0) {
				t.Errorf("%s (BLIP_ATTN_QPROJ off %v): %v", c.Name, off, shaderNames(ds))
			}
			t.Run(fmt.Sprintf("%s/qproj_off_%v", name, off), func(t *testing.T) { checkF16Case(t, d, ref, c, shaderNames(ds)[0]) })
		}
	}
	if n < 10 {
		t.Errorf("only %d query_attention cases", n)
	}
}
