#version 450
// attention_coop.glsl with 16 x 16 x 16 fragments (NVIDIA tensor cores).
#define FRAG 16
#include "attention_coop.glsl"
