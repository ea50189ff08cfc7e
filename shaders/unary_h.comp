#version 450
// unary.glsl with Y in f16 or bf16 (specialization constant YT).
#define HALF_Y
#include "unary.glsl"
