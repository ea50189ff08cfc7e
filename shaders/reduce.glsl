// Workgroup-wide reductions for the row kernels: subgroup arithmetic, then the
// per-subgroup partials combined through shared memory. Every invocation of
// the workgroup must call them (they contain barriers) and gets the result.
// Needs the NT spec constant (the workgroup size) declared before inclusion.
#ifndef BLIP_REDUCE_GLSL
#define BLIP_REDUCE_GLSL

#include "common.glsl" // exp_acc (push_lse)

#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

shared float red_f[NT];
shared uint red_u[NT];

float wg_sum(float v) {
    v = subgroupAdd(v);
    barrier(); // earlier readers of red_f are done
    if (subgroupElect()) {
        red_f[gl_SubgroupID] = v;
    }
    barrier();
    float s = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++) {
        s += red_f[i];
    }
    return s;
}

float wg_max(float v) {
    v = subgroupMax(v);
    barrier();
    if (subgroupElect()) {
        red_f[gl_SubgroupID] = v;
    }
    barrier();
    float m = red_f[0];
    for (uint i = 1; i < gl_NumSubgroups; i++) {
        m = max(m, red_f[i]);
    }
    return m;
}

uint wg_min_u(uint v) {
    v = subgroupMin(v);
    barrier();
    if (subgroupElect()) {
        red_u[gl_SubgroupID] = v;
    }
    barrier();
    uint m = red_u[0];
    for (uint i = 1; i < gl_NumSubgroups; i++) {
        m = min(m, red_u[i]);
    }
    return m;
}

// An online softmax's running state over an invocation's share of a row:
// push_lse adds value v to (m, the largest value so far, s, the sum of
// exp(x - m)); -Inf adds nothing. wg_lse_sum is the workgroup's sum
// of exp(x - M) for the row's maximum M (wg_max of every m), from every
// invocation's state. softmax.comp, cross_entropy.comp and argmax_nll.comp
// share them, so that their sums agree bit for bit.
void push_lse(inout float m, inout float s, float v) {
    if (v > m) {
        s = s * exp_acc(m - v) + 1.0;
        m = v;
    } else if (v != uintBitsToFloat(0xff800000u)) {
        s += exp_acc(v - m);
    }
}

float wg_lse_sum(float m, float s, float M) {
    return wg_sum(m == uintBitsToFloat(0xff800000u) ? 0.0 : s * exp_acc(m - M));
}

// The workgroup's row when rows are spread over a 2-D grid of groups.
uint group_linear() {
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

#endif
