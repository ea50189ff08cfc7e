#version 450
// gemm_coop8w.comp (wide) with the K loop prefetching two steps ahead (PREFETCH2,
// BLIP_COOP_PREFETCH=2; gpu/vk/gemm_coop.go).
#define FRAG 8
#define SGM 2
#define SGN 4
#define WM 4
#define WN 2
#define PREFETCH2
#include "gemm_coop.glsl"
