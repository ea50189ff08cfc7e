package graph

import (
	"testing"

	"blip/gpu/cpu"
)

// TestGradCheck runs the whole table on the CPU backend in every mode:
// fresh gradients, accumulation into parameter gradients that already hold
// values, and a second use of every input adding to the first.
func TestGradCheck(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	for i := range gradCases {
		c := &gradCases[i]
		if c.Seed == 0 {
			c.Seed = uint64(i + 1)
		}
		t.Run(c.Name, func(t *testing.T) {
			for _, mode := range []GradMode{AsInputs, AsParams, Twice} {
				if err := c.Check(be, mode); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestCoverage fails when an op family has neither a gradient rule nor a
// reason for having none, or has a rule but no gradient-check case.
func TestCoverage(t *testing.T) {
	cases := map[string]int{}
	for _, c := range gradCases {
		cases[c.op]++
	}
	for _, name := range opNames() {
		d := opRegistry[name]
		switch {
		case d.grad == nil && d.noGrad == "":
			t.Errorf("op %q has no gradient rule and no no-grad reason", name)
		case d.grad != nil && d.noGrad != "":
			t.Errorf("op %q has both a gradient rule and a no-grad reason", name)
		case d.grad != nil && cases[name] == 0:
			t.Errorf("op %q has a gradient rule but no gradcheck case", name)
		}
		delete(cases, name)
	}
	delete(cases, "")
	for name := range cases {
		t.Errorf("gradcheck cases name op %q, which is not registered", name)
	}
}
