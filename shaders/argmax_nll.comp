#version 450
// gpu.ArgMax with NLL, the pick's cross-entropy (argmax.glsl).
#define NLL
#include "argmax.glsl"
