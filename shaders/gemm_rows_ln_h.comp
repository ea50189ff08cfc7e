#version 450
// gemm_rows.glsl with B in f16 or bf16 and the LayerNorm after it
// (gpu.GemmNorm).
#define HALF_B
#define NORM
#include "gemm_rows.glsl"
