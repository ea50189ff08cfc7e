#version 450
// attention_coop_bwd.glsl with 8 x 8 x 8 fragments (the shape lavapipe lists).
#define FRAG 8
#include "attention_coop_bwd.glsl"
