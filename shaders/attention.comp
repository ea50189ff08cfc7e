#version 450
// attention_fwd.glsl with an f32 O.
#include "attention_fwd.glsl"
