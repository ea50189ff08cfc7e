#version 450
// gemm_rows.glsl with B in f16 or bf16 (specialization constant BT).
#define HALF_B
#include "gemm_rows.glsl"
