#version 450
// gpu.Reduce: Y[r] = op(X[r, 0:cols]); one workgroup per row. Max
// propagates NaN (a row holding a NaN gives NaN), as the CPU twin does.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
layout(constant_id = 1) const uint OP = 0;   // gpu.ReduceOp: sum, max, mean
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) writeonly buffer BufY { float Y_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offX, offY;
} p;

void main() {
    uint row = group_linear();
    if (row >= p.rows) {
        return; // the whole workgroup leaves together
    }
    uint base = p.offX + row * p.cols;
    uint t = gl_LocalInvocationID.x;
    float r;
    if (OP == 1) {
        float m = uintBitsToFloat(0xff800000u); // -Inf
        uint nan = 0;
        for (uint c = t; c < p.cols; c += NT) {
            float v = X_[base + c];
            if (nan_bits(v)) {
                nan = 1;
            } else {
                m = max(m, v);
            }
        }
        r = wg_max(m);
        if (wg_min_u(1 - nan) == 0) {
            r = uintBitsToFloat(0x7fc00000u);
        }
    } else {
        float s = 0.0;
        for (uint c = t; c < p.cols; c += NT) {
            s += X_[base + c];
        }
        r = wg_sum(s);
        if (OP == 2) {
            r /= float(p.cols);
        }
    }
    if (t == 0) {
        Y_[p.offY + row] = r;
    }
}
