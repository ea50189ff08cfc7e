#version 450
// gemm_coop.glsl with the _t staging (COOP_T, gemm_coop_stage_t.glsl: training's transposed layouts) with 16 x 16 x 16 fragments and B in f32 (rounded to f16
// on the way in): the weight gradient of fp16 mixed-precision training.
#define FRAG 16
#define B_F32
#define COOP_T
#include "gemm_coop.glsl"
