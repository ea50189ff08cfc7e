#version 450
// attention_coop_bwd.glsl with 16 x 16 x 16 fragments (NVIDIA's tensor cores).
#define FRAG 16
#include "attention_coop_bwd.glsl"
