package bench

import (
	"testing"

	"blip/gpu"
	_ "blip/gpu/cpu" // the backend the built cases run on
)

// --attention BxHxTxD[:f16]: the f16 case asks for half-precision products
// and PyTorch's half SDPA; anything else malformed is refused.
func TestParseAttention(t *testing.T) {
	be, err := gpu.Open(gpu.Options{Backend: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	for _, c := range []struct {
		spec, name string
		f16        bool
	}{
		{"2x3x5x8", "attention 2x3x5x8", false},
		{"2x3x5x8:f32", "attention 2x3x5x8", false},
		{"1x12x577x64:f16", "attention 1x12x577x64 f16", true},
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
		a := call.(gpu.Attention)
		if a.F16 != c.f16 || a.Tq != a.Tk || a.Check() != nil {
			t.Errorf("%s: built %+v (check %v)", c.spec, a.AttentionShape, a.Check())
		}
		rel()
	}
	for _, bad := range []string{"", "2x3x5", "2x3x5x8:bf16", "0x3x5x8", "2x3x5x8x", "2x3x5x8:f16:x", "a"} {
		if _, err := ParseAttention(bad); err == nil {
			t.Errorf("ParseAttention(%q) accepted", bad)
		}
	}
}
