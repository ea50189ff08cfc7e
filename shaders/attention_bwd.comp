#version 450
// attention_bwd.glsl with Q, K and V in f32.
#include "attention_bwd.glsl"
