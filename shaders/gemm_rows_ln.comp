#version 450
// gemm_rows.glsl with B in f32 and the LayerNorm after it (gpu.GemmNorm).
#define NORM
#include "gemm_rows.glsl"
