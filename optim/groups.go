package optim

import (
	"strings"

	"blip/graph"
)

// Group is a set of parameters sharing a learning-rate scale and a weight
// decay, as a torch param_group.
type Group struct {
	Name   string
	Params []*graph.Param
	// LRScale multiplies the optimiser's learning rate for this group
	// (> 0), so that a schedule setting one rate keeps the groups' ratios.
	LRScale float64
	// WeightDecay is the group's decoupled weight decay (>= 0).
	WeightDecay float64
}

// NoDecay reports whether LAVIS's rule exempts p from weight decay: 1-D
// parameters (biases, LayerNorm weights), names ending in ".bias", and
// names containing "norm" in any case (LayerNorm, layer_norm1,
// post_layernorm).
func NoDecay(p *graph.Param) bool {
	name := p.Name()
	return len(p.Shape()) < 2 || strings.HasSuffix(name, ".bias") ||
		strings.Contains(strings.ToLower(name), "norm")
}

// DecayGroups returns the groups New uses for cfg: one group "decay" of
// every parameter with cfg.WeightDecay, or, with cfg.ExemptBiasNorm, that
// group less the NoDecay parameters, which form a group "no_decay" with
// weight decay 0. Empty groups are left out.
func DecayGroups(ps *graph.Params, cfg Config) []Group {
	decay := Group{Name: "decay", LRScale: 1, WeightDecay: cfg.WeightDecay}
	noDecay := Group{Name: "no_decay", LRScale: 1}
	for _, p := range ps.List() {
		if cfg.ExemptBiasNorm && NoDecay(p) {
			noDecay.Params = append(noDecay.Params, p)
		} else {
			decay.Params = append(decay.Params, p)
		}
	}
	var gs []Group
	for _, g := range []Group{decay, noDecay} {
		if len(g.Params) > 0 {
			gs = append(gs, g)
		}
	}
	return gs
}
