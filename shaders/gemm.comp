#version 450
// gemm.glsl with B in f32.
#include "gemm.glsl"
