// Package graph records tensor operations into a graph that is executed on a
// gpu.Backend as one command stream, with autodiff: each op's gradient rule
// sits next to its forward.
//
// # Building
//
// A Graph holds Tensors (a shape and a dtype, no memory): inputs, constants,
// parameters and op results. Ops check shapes as they are built; the first
// bad op records an Error naming itself (with its Scope) and its operands'
// shapes and origins, later ops return invalid tensors, and Err or Compile
// return that error. Model code therefore reads straight through:
//
//	ps := graph.NewParams()
//	w, _ := ps.New("text_encoder.encoder.layer.0.output.dense.weight", 768, 3072)
//	...                                  // every parameter, by its HF name
//	ps.Alloc(be)                         // one value and one gradient buffer
//	p.Write(values)                      // load a checkpoint
//
//	g := graph.New()
//	ids := g.Input("input_ids", gpu.I32, B, T)
//	h := g.Embedding(g.Param(word), ids)
//	defer g.Scope("layer.0")()
//	h = g.LayerNorm(g.Add(h, g.Linear(h, g.Param(w), g.Param(b))), ...)
//	loss := g.CrossEntropy(logits, labels, 0.1)
//	if err := g.Err(); err != nil { ... }
//
// Parameters are named, persistent device buffers (Params); using one Param
// in several places (tied encoder/decoder weights) sums the gradients of
// every use. Frozen parameters get no gradient. Gradients accumulate across
// runs until Params.ZeroGrad.
//
// # Running
//
// Compile plans a graph for a backend. With Config.Loss the plan trains: the
// backward pass is built (reverse topological order, each op's rule adding
// backward nodes) and gradients are added to the parameters'. Without it the
// plan is inference only: no backward, no saved activations. Either way the
// plan keeps only the nodes its outputs need, gives every tensor a lifetime
// and places all of them in one arena buffer (a few if one would exceed the
// backend's binding limit) with greedy-by-size offset assignment, so that
// tensors whose lifetimes do not overlap share memory, and records every
// node's kernel calls once. A training step is then
//
//	plan.WriteI32(ids, batch)            // inputs keep their values between runs
//	ps.ZeroGrad()                        // at the start of an accumulation cycle
//	plan.Run()                           // one Backend.Do, one Sync
//	plan.ReadF32(loss, out)
//
// or Record, the optimiser's calls, and one Backend.Sync. A plan allocates
// nothing when it runs again. Dropout draws a new mask per run from
// (SetSeed, run count, op); Config.DropoutOff makes it the identity.
//
// # Gradients
//
// Gradient buffers follow llm.c's discipline without its memsets: the first
// contribution to a gradient writes it, later ones add (Gemm's Beta,
// accumulating kernels, or an add), and a parameter's gradient is always
// added to. A gradient whose only reader is the running rule may be
// overwritten in place or handed on as its input's gradient (a reshape, an
// add), which saves memory and copies; see backCtx.
//
// # Kernels
//
// Every op's forward and backward are calls of gpu/calls.go,
// gpu/calls_train.go and gpu/calls_attention.go: Linear is a Gemm (bias and
// activation in its epilogue for inference) and its backward two Gemms and
// ColumnSum, or ActBackward with its fused bias gradient; LayerNorm,
// Softmax, activations, Embedding, L2Normalize, Dropout and CrossEntropy
// have fused forward and backward kernels; Attention uses the fused
// flash-style kernels, or (head dimension above gpu.MaxAttentionHeadDim, or
// AttentionOpts.Unfused) batched Gemms over heads with Softmax and
// SoftmaxBackward. Slices and Concat move strided blocks with Copy2D. In
// inference plans a LayerNorm built right after an Add of two tensors of
// one shape (a transformer block's residual add) computes the add itself
// (gpu.LayerNorm.R): one call and one pass over the rows instead of two.
// Compositions remain where no kernel does the whole job: the mean and
// ignore-index counting of CrossEntropy (Embedding of ones by label, Reduce,
// Binary), SoftCrossEntropy (the CrossEntropy kernel for the log-sum-exp,
// Softmax and elementwise calls for the gradient), reductions' backward (a
// rank-1 Gemm with ones) and zero-filling (a Gemm of zero vectors, since
// scaling by 0 keeps NaNs).
//
// # Checking
//
// GradCheck compares a plan's fp32 gradients with central differences of a
// float64 reference forward, in three modes that exercise writing,
// accumulating into parameters and adding a second use. The package tests
// run it for every op family (a coverage test enforces this), on the CPU
// backend and on Vulkan against the CPU.
package graph
