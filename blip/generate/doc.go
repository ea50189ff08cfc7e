// Package generate holds the decoding algorithms of HuggingFace transformers'
// generate() as BLIP captioning and VQA use them: greedy search, beam search
// and top-k/top-p sampling, together with the logits processors that run
// before each choice (repetition penalty, minimum length, temperature, top-k,
// top-p).
//
// The package knows nothing about the model. A decoder implements Stepper
// (prompt feed, one-token steps with a KV cache, cache row reordering) and
// Generate drives it. The aim is token-for-token agreement with transformers
// 5.x for the same logits, so the arithmetic that decides which token wins
// (log-softmax, beam score accumulation, the length penalty and the -1e9
// masks of the vectorised beam search) is done in float32 as torch does it.
package generate
