#version 450
// gemm_coop.glsl with the _t staging (COOP_T, gemm_coop_stage_t.glsl: training's transposed layouts), wide: 2 x 4 subgroups of (4 FRAG) x (2 FRAG), with 16 x 16 x 16
// fragments (a 128 x 128 block on NVIDIA tensor cores).
#define FRAG 16
#define SGM 2
#define SGN 4
#define WM 4
#define WN 2
#define COOP_T
#include "gemm_coop.glsl"
