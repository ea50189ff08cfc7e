#version 450
// gemm_cpu.glsl with B in f32.
#include "gemm_cpu.glsl"
