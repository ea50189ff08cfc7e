#version 450
// attention_split.glsl with its two passes in one dispatch (MODE 4).
#define ONEPASS
#include "attention_split.glsl"
