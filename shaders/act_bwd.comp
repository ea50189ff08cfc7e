#version 450
// gpu.ActBackward: DX = DY * act'(X) (ACT numbered as gpu.Act; with FROMOUT
// X is the activation's output). MODE 0: one invocation per element of a flat
// range of n elements. MODE 1: with the first stage of the DBias column sums
// (gpu.ColumnBlock rows per block): workgroup g takes the column tile
// g % tiles of row block part = g / tiles, each invocation one column, writes
// DX for the block's rows and their sum, in row order, to row part of P (row
// stride ldp), adding to what P holds with acc.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 64;
layout(constant_id = 1) const uint ACT = 0;
layout(constant_id = 2) const uint FROMOUT = 0;
layout(constant_id = 3) const uint MODE = 0;
#include "common.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) readonly buffer BufDY { float DY_[]; };
layout(binding = 2) writeonly buffer BufDX { float DX_[]; };
layout(binding = 3) buffer BufP { float P_[]; };

layout(push_constant) uniform Push {
    uint rows, cols; // MODE 0: rows is the element count
    uint offX, offDY, offDX, offP;
    uint block, ldp, acc;
} p;

// GELU'(x) = Phi(x) + x*phi(x), Phi through erfc for x < 0 (as gelu_exact);
// the second term is 0 where phi underflows (also for x = +-Inf).
float gelu_grad(float x) {
    float z = x * 0.707106781f;
    float cdf = z >= 0.0f ? 0.5f * (1.0f + erf_acc(z)) : 0.5f * erfc_pos(-z);
    float pdf = exp_acc(-0.5f * x * x) * 0.398942280f;
    if (pdf == 0.0f) {
        return cdf;
    }
    return fma(x, pdf, cdf);
}

float grad(uint i) {
    float dy = DY_[p.offDY + i];
    if (ACT == 1) {
        return dy * gelu_grad(X_[p.offX + i]);
    }
    if (ACT == 2) {
        float t = X_[p.offX + i];
        if (FROMOUT == 0) {
            t = tanh_acc(t);
        }
        return dy * (1.0f - t * t);
    }
    return dy;
}

void main() {
    uint g = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (MODE == 0) {
        uint i = g * NT + gl_LocalInvocationID.x;
        if (i < p.rows) {
            DX_[p.offDX + i] = grad(i);
        }
        return;
    }
    uint tiles = (p.cols + NT - 1) / NT;
    uint part = g / tiles;
    uint c = (g - part * tiles) * NT + gl_LocalInvocationID.x;
    uint r0 = part * p.block;
    if (c >= p.cols || r0 >= p.rows) {
        return;
    }
    uint r1 = min(p.rows, r0 + p.block);
    float s = 0.0;
    for (uint r = r0; r < r1; r++) {
        float dx = grad(r * p.cols + c);
        DX_[p.offDX + r * p.cols + c] = dx;
        s += dx;
    }
    uint o = p.offP + part * p.ldp + c;
    P_[o] = p.acc != 0 ? P_[o] + s : s;
}
