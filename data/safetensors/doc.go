// Package safetensors reads and writes the safetensors checkpoint format used
// by HuggingFace: an 8-byte little-endian header length N, N bytes of JSON
// header {name: {"dtype", "shape", "data_offsets"}} with an optional
// "__metadata__" string map, then the tensor bytes, contiguous and in offset
// order.
//
// Files are opened lazily: Open parses and validates the header only, and
// each getter reads its tensor with ReadAt, so multi-gigabyte checkpoints can
// be used without reading them whole. A sharded checkpoint
// (model.safetensors.index.json) opens as one Set with the same getters.
// Writer writes F32, I32 and I64 tensors atomically (temporary file in the
// same directory, fsync, rename).
//
// Every error names the file and, where one is involved, the tensor.
package safetensors
