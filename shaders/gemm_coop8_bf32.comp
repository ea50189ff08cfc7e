#version 450
// gemm_coop.glsl with 8 x 8 x 8 fragments and B in f32 (rounded to f16 on
// the way in).
#define FRAG 8
#define B_F32
#include "gemm_coop.glsl"
