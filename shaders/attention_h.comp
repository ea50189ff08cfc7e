#version 450
// attention_fwd.glsl with O in f16 or bf16 (specialization constant OT).
#define HALF_O
#include "attention_fwd.glsl"
