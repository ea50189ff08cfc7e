#version 450
// gpu.ArgMax (argmax.glsl).
#include "argmax.glsl"
