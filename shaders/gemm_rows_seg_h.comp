#version 450
// gemm_rows.glsl with B in f16 or bf16, up to three products of one A side
// by side.
#define HALF_B
#define SEGS
#include "gemm_rows.glsl"
