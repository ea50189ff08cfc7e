// Package blip is the BLIP model: configuration, HF checkpoint loading, the
// ViT image encoder and the MED text transformer (unimodal encoder,
// image-grounded encoder, image-grounded decoder), the ITC/ITM/LM objectives,
// generation, pretraining, CapFilt, fine-tuning, evaluation and serving. It
// builds on graph (autodiff and execution) and data (tokenizer, images,
// datasets).
package blip
