#version 450
// unary.glsl with a 32-bit Y.
#include "unary.glsl"
