#version 450
// gemm_coop.glsl with the _t staging (COOP_T, gemm_coop_stage_t.glsl: training's transposed layouts) with 16 x 16 x 16 fragments (NVIDIA tensor cores).
#define FRAG 16
#define COOP_T
#include "gemm_coop.glsl"
