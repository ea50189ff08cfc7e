#version 450
// gemm_rows.glsl with B in f32.
#include "gemm_rows.glsl"
