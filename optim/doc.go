// Package optim holds the optimisers and schedules of BLIP training: AdamW,
// linear warmup with per-epoch step decay, cosine decay, gradient clipping.
//
// AdamW (New) updates a graph.Params set on its own backend with the
// gpu.AdamW kernel: fp32 master weights, moments in device buffers laid out
// like the value buffers, step counts and bias corrections on the host. A
// training step records everything and syncs once:
//
//	opt.SetLR(sched.LR(epoch, iter))
//	plan.Record()
//	opt.Step()
//	params.ZeroGrad()
//	backend.Sync()
//
// Weight decay is 0.05 on every parameter by default, as salesforce/BLIP;
// Config.ExemptBiasNorm exempts biases and norms as LAVIS does, and
// NewGroups takes torch-style groups with their own rate scale and decay.
// Clipping (Config.MaxGradNorm) is off by default, as in BLIP: it needs
// one host read of the gradient norm per step. A Scaler (AdamW.SetScaler)
// adds torch.cuda.amp.GradScaler's dynamic loss scaling for fp16 runs:
// the backward is seeded with its scale S, Step unscales by 1/S, skips
// steps whose gradient norm overflowed and backs S off, and grows S after
// a run of good steps.
//
// The schedules are those of salesforce/BLIP's utils.py: StepDecay
// (pretraining: warmup in epoch 0, then init_lr * rate^epoch) and Cosine
// (fine-tuning, per epoch). AdamW.State and AdamW.Load move the moments and
// step counts to and from a map of tensors for checkpoints; the caller
// writes them (data/safetensors).
package optim
