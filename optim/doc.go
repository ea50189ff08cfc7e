// Package optim holds the optimisers and schedules of BLIP training: AdamW,
// linear warmup with per-epoch step decay, cosine decay, gradient clipping.
package optim
