// Workgroup-wide reductions for the row kernels: subgroup arithmetic, then the
// per-subgroup partials combined through shared memory. Every invocation of
// the workgroup must call them (they contain barriers) and gets the result.
// Needs the NT spec constant (the workgroup size) declared before inclusion.
#ifndef BLIP_REDUCE_GLSL
#define BLIP_REDUCE_GLSL

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

// The workgroup's row when rows are spread over a 2-D grid of groups.
uint group_linear() {
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

#endif
