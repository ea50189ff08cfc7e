package blip

import (
	"fmt"
	"os"

	"blip/gpu"
	"blip/graph"
)

// PadRows packs token sequences into one (len(seqs), t) batch, t being the
// longest, padded with pad, and returns the ids, HF's attention mask as f32
// (1 keeps a token, 0 is padding) and t. maxLen > 0 bounds t: longer
// sequences are an error, since position embeddings end there.
func PadRows(seqs [][]int32, pad int32, maxLen int) (ids []int32, mask []float32, t int, err error) {
	if len(seqs) == 0 {
		return nil, nil, 0, fmt.Errorf("blip: no token sequences")
	}
	for i, s := range seqs {
		if len(s) == 0 {
			return nil, nil, 0, fmt.Errorf("blip: token sequence %d is empty", i)
		}
		t = max(t, len(s))
	}
	if maxLen > 0 && t > maxLen {
		return nil, nil, 0, fmt.Errorf("blip: a sequence of %d tokens is longer than the %d position embeddings", t, maxLen)
	}
	ids = make([]int32, 0, len(seqs)*t)
	mask = make([]float32, 0, len(seqs)*t)
	for _, s := range seqs {
		ids = append(ids, s...)
		for range s {
			mask = append(mask, 1)
		}
		for range t - len(s) {
			ids = append(ids, pad)
			mask = append(mask, 0)
		}
	}
	return ids, mask, t, nil
}

// encoderConfig is the configuration of an inference plan over many rows
// (the vision encoder, text encoders over a batch, ITM): no dropout, and
// under 16-bit weights the activations that only linear layers read kept
// in the weights' type (graph.Config.LowActivations). Decoding's plans,
// whose products have a few rows, do without the latter.
func encoderConfig(outs ...*graph.Tensor) graph.Config {
	return graph.Config{Outputs: outs, DropoutOff: true, LowActivations: !lowActivationsOff}
}

// BLIP_LOW_ACTIVATIONS=0 keeps every activation in fp32 (for comparisons:
// gpu/bench/gpu_run.sh's act16 stage).
var lowActivationsOff = os.Getenv("BLIP_LOW_ACTIVATIONS") == "0"

// LowActivations is what training plans set graph.Config.LowActivations
// to: true (under fp16 weights the activations that only linear layers and
// their weight gradients read are then kept in f16, which changes no
// result), unless BLIP_LOW_ACTIVATIONS=0.
func LowActivations() bool { return !lowActivationsOff }

// runOnce compiles outs on be, lets write fill the inputs, runs the plan and
// reads every output back (as f32). It is the one-shot path of inference
// helpers that need no plan cache.
func runOnce(g *graph.Graph, be gpu.Backend, outs []*graph.Tensor, write func(p *graph.Plan) error) ([][]float32, error) {
	plan, err := g.Compile(be, encoderConfig(outs...))
	if err != nil {
		return nil, err
	}
	defer plan.Close()
	if err := write(plan); err != nil {
		return nil, err
	}
	if err := plan.Run(); err != nil {
		return nil, err
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = make([]float32, o.Numel())
		if err := plan.ReadF32(o, res[i]); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// firstErr returns the first non-nil error of already evaluated calls.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// patchesInput declares the patch input of a vision forward for batch
// images and returns it with the patchified pixels.
func (m *Model) patchesInput(g *graph.Graph, pixels []float32, batch int) (*graph.Tensor, []float32, error) {
	v := &m.Config.VisionConfig
	patches, err := Patchify(pixels, batch, v)
	if err != nil {
		return nil, nil, err
	}
	in := g.Input("patches", gpu.F32, batch, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize)
	return in, patches, nil
}
