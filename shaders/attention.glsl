// Shared pieces of the fused attention shaders (attention.comp,
// attention_bwd.comp): reductions over the 8 consecutive invocations that
// share a row group of a tile, and bounds-checked vec4 loads.
//
// The includer defines the specialization constants NT (invocations) and
// SHUF (1: subgroup shuffles, which need subgroups of at least 8 invocations
// made of consecutive invocation indices; 0: through shared memory), and
// calls the reductions in uniform control flow.
#ifndef BLIP_ATTENTION_GLSL
#define BLIP_ATTENTION_GLSL

#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

#define ATT_NEG_INF uintBitsToFloat(0xff800000u)
#define ATT_INF uintBitsToFloat(0x7f800000u)
const float ATT_LOG2E = 1.44269504088896341f;

// Only the shared-memory reductions use it (one element otherwise).
shared vec4 sRed[SHUF != 0 ? 1 : NT];

vec4 max8(vec4 v) {
    if (SHUF != 0) {
        v = max(v, subgroupShuffleXor(v, 1u));
        v = max(v, subgroupShuffleXor(v, 2u));
        v = max(v, subgroupShuffleXor(v, 4u));
        return v;
    }
    uint t = gl_LocalInvocationIndex;
    sRed[t] = v;
    barrier();
    uint g = t & ~7u;
    vec4 r = sRed[g];
    for (uint i = 1; i < 8; i++) {
        r = max(r, sRed[g + i]);
    }
    barrier();
    return r;
}

vec4 sum8(vec4 v) {
    if (SHUF != 0) {
        v += subgroupShuffleXor(v, 1u);
        v += subgroupShuffleXor(v, 2u);
        v += subgroupShuffleXor(v, 4u);
        return v;
    }
    uint t = gl_LocalInvocationIndex;
    sRed[t] = v;
    barrier();
    uint g = t & ~7u;
    // The same order in every lane, so that all eight agree bit for bit.
    vec4 r = ((sRed[g] + sRed[g + 1]) + (sRed[g + 2] + sRed[g + 3])) +
             ((sRed[g + 4] + sRed[g + 5]) + (sRed[g + 6] + sRed[g + 7]));
    barrier();
    return r;
}

// ATT_LOAD4(name, S, S4) defines vec4 name(uint i, uint d, uint D): elements
// i+d .. i+d+3 of the float buffer S (vec4 view S4), zero from column D on.
// With VEC the caller guarantees i, d and D are multiples of 4.
#define ATT_LOAD4(name, S, S4)                                  \
    vec4 name(uint i, uint d, uint D) {                         \
        if (VEC != 0) {                                         \
            return d < D ? S4[(i + d) >> 2] : vec4(0.0);        \
        }                                                       \
        vec4 v = vec4(0.0);                                     \
        [[unroll]] for (uint e = 0; e < 4; e++) {               \
            if (d + e < D) {                                    \
                v[e] = S[i + d + e];                            \
            }                                                   \
        }                                                       \
        return v;                                               \
    }

// ATT_LOAD16(name, S, T): ATT_LOAD4's name for the 16-bit codes S of type
// T (16-bit activations; half.glsl's widen16), element by element.
#define ATT_LOAD16(name, S, T)                                  \
    vec4 name(uint i, uint d, uint D) {                         \
        vec4 v = vec4(0.0);                                     \
        [[unroll]] for (uint e = 0; e < 4; e++) {               \
            if (d + e < D) {                                    \
                v[e] = widen16(T, uint(S[i + d + e]));          \
            }                                                   \
        }                                                       \
        return v;                                               \
    }

// ATT_STORE4(name, S, S4): the matching store (columns from D on are
// skipped).
#define ATT_STORE4(name, S, S4)                                 \
    void name(uint i, uint d, uint D, vec4 v) {                 \
        if (VEC != 0) {                                         \
            if (d < D) {                                        \
                S4[(i + d) >> 2] = v;                           \
            }                                                   \
            return;                                             \
        }                                                       \
        [[unroll]] for (uint e = 0; e < 4; e++) {               \
            if (d + e < D) {                                    \
                S[i + d + e] = v[e];                            \
            }                                                   \
        }                                                       \
    }

#endif
