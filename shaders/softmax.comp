#version 450
// gpu.Softmax: Y[r] = softmax(scale*X[r] + Mask[(phase + r) / group]); one
// workgroup per row. Pass 1 keeps a running (max, sum of exp) per invocation,
// pass 2 writes. A row that is all -Inf after masking gives zeros.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) readonly buffer BufMask { float Mask_[]; };
layout(binding = 2) writeonly buffer BufY { float Y_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offX, offMask, offY;
    uint hasMask, group, phase;
    float scale;
} p;

void main() {
    uint row = group_linear();
    if (row >= p.rows) {
        return;
    }
    const float NEG_INF = uintBitsToFloat(0xff800000u);
    uint xb = p.offX + row * p.cols;
    uint mb = p.offMask + ((p.phase + row) / p.group) * p.cols;
    uint t = gl_LocalInvocationID.x;
    bool hasMask = p.hasMask != 0;

    float m = NEG_INF;
    float s = 0.0;
    for (uint c = t; c < p.cols; c += NT) {
        float v = p.scale * X_[xb + c];
        if (hasMask) {
            v += Mask_[mb + c];
        }
        push_lse(m, s, v);
    }
    float M = wg_max(m);
    float S = wg_lse_sum(m, s, M);

    for (uint c = t; c < p.cols; c += NT) {
        float y = 0.0;
        if (M != NEG_INF) {
            float v = p.scale * X_[xb + c];
            if (hasMask) {
                v += Mask_[mb + c];
            }
            y = exp_acc(v - M) / S;
        }
        Y_[p.offY + row * p.cols + c] = y;
    }
}
