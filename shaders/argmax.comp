#version 450
// gpu.ArgMax: Y[r] = index of the largest value of X[r, :]; ties go to the
// lowest index, NaNs are ignored, a row of only NaNs gives 0. One workgroup
// per row: the largest value first, then the lowest index that holds it.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) writeonly buffer BufY { int Y_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offX, offY;
} p;

void main() {
    uint row = group_linear();
    if (row >= p.rows) {
        return;
    }
    uint xb = p.offX + row * p.cols;
    uint t = gl_LocalInvocationID.x;
    float bv = uintBitsToFloat(0xff800000u);
    uint bi = 0xffffffffu;
    for (uint c = t; c < p.cols; c += NT) {
        float v = X_[xb + c];
        if (!nan_bits(v) && (bi == 0xffffffffu || v > bv)) {
            bv = v;
            bi = c;
        }
    }
    float m = wg_max(bv);
    uint idx = wg_min_u(bi != 0xffffffffu && bv == m ? bi : 0xffffffffu);
    if (t == 0) {
        Y_[p.offY + row] = idx == 0xffffffffu ? 0 : int(idx);
    }
}
