#version 450
// gemm_rows.glsl with B in f32, up to three products of one A side by side.
#define SEGS
#include "gemm_rows.glsl"
