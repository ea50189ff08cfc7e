package bench

import (
	"fmt"
	"strings"
	"testing"

	"blip/gpu"
	_ "blip/gpu/cpu" // the backend the built cases run on
)

// --attention BxHxTxD[:f16|:f32][:bwd]: the f16 case asks for
// half-precision products and PyTorch's half SDPA, bwd for the backward
// after the forward (both F16 with f16); anything else malformed is
// refused.
func TestParseAttention(t *testing.T) {
	be, err := gpu.Open(gpu.Options{Backend: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	for _, c := range []struct {
		spec, name string
		f16, bwd   bool
	}{
		{"2x3x5x8", "attention 2x3x5x8", false, false},
		{"2x3x5x8:f32", "attention 2x3x5x8", false, false},
		{"1x12x577x64:f16", "attention 1x12x577x64 f16", true, false},
		{"2x3x5x8:bwd", "attention 2x3x5x8 fwd+bwd", false, true},
		{"2x3x5x8:f16:bwd", "attention 2x3x5x8 fwd+bwd f16", true, true},
		{"1x12x1x21x64", "attention 1x12x1x21x64", false, false},
		{"3x12x2x577x64:f16", "attention 3x12x2x577x64 f16", true, false},
	} {
		k, err := ParseAttention(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if k.Name != c.name || (k.Torch["dtype"] == "float16") != c.f16 {
			t.Errorf("%s: case %q, torch %v", c.spec, k.Name, k.Torch)
		}
		call, rel, err := k.Build(be)
		if err != nil {
			t.Fatal(err)
		}
		if c.bwd != (k.Torch["backward"] == true) {
			t.Errorf("%s: torch %v", c.spec, k.Torch)
		}
		calls := []gpu.Call{call}
		if seq, ok := call.(Seq); ok {
			calls = seq
		}
		if len(calls) != 1+b2i(c.bwd) {
			t.Fatalf("%s: %d calls", c.spec, len(calls))
		}
		a := calls[0].(gpu.Attention)
		var tq, tk int
		if n, _ := fmt.Sscanf(strings.Fields(c.name)[1], "%dx%dx%dx%dx%d", new(int), new(int), &tq, &tk, new(int)); n < 5 {
			tk = tq
		}
		if a.F16 != c.f16 || a.Tq != tq || a.Tk != tk || a.Check() != nil {
			t.Errorf("%s: built %+v (check %v)", c.spec, a.AttentionShape, a.Check())
		}
		if c.bwd {
			if g := calls[1].(gpu.AttentionBackward); g.F16 != c.f16 || g.Check() != nil {
				t.Errorf("%s: built backward F16 %v (check %v)", c.spec, g.F16, g.Check())
			}
		}
		rel()
	}
	for _, bad := range []string{"", "2x3x5", "2x3x5x8:bf16", "0x3x5x8", "2x3x5x8x", "2x3x5x8:f16:x", "2x3x5x8:bwd:f16", "2x3x5x8:bwd:bwd", "2x3x5x8:f16:bwd:bwd", "a", "1x2x1x5x8:bwd", "1x2x0x5x8", "1x2x1x5x8x1"} {
		if _, err := ParseAttention(bad); err == nil {
			t.Errorf("ParseAttention(%q) accepted", bad)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
