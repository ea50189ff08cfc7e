#version 450
// gemm_coop.glsl with 16 x 16 x 16 fragments (NVIDIA tensor cores).
#define FRAG 16
#include "gemm_coop.glsl"
