#version 450
// attention_split.glsl in one dispatch (MODE 4) with the query projection
// in it (gpu.QueryAttention); modes 2 and 3 of the same call run it too.
#define ONEPASS
#define PROJ
#include "attention_split.glsl"
