#version 450
// attention_bwd.glsl with Q, K and V in f16 or bf16 (specialization
// constant QT).
#define HALF_QKV
#include "attention_bwd.glsl"
