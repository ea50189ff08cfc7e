#version 450
// gemm_coop8.comp with the K loop prefetching two steps ahead (PREFETCH2,
// BLIP_COOP_PREFETCH=2; gpu/vk/gemm_coop.go).
#define FRAG 8
#define PREFETCH2
#include "gemm_coop.glsl"
