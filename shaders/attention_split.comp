#version 450
#include "attention_split.glsl"
