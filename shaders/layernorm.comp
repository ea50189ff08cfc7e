#version 450
// layernorm.glsl with an f32 Y.
#include "layernorm.glsl"
