#version 450
// gemm_coop.glsl with the _t staging (COOP_T, gemm_coop_stage_t.glsl: training's transposed layouts) with 8 x 8 x 8 fragments and B in f32 (rounded to f16 on
// the way in).
#define FRAG 8
#define B_F32
#define COOP_T
#include "gemm_coop.glsl"
