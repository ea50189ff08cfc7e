#version 450
// gpu.L2Normalize: Y[r] = X[r] / max(||X[r]||, eps); one workgroup per row.
// Y may alias X.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) writeonly buffer BufY { float Y_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offX, offY;
    float eps;
} p;

void main() {
    uint row = group_linear();
    if (row >= p.rows) {
        return;
    }
    uint t = gl_LocalInvocationID.x;
    uint base = row * p.cols;
    float q = 0.0;
    for (uint c = t; c < p.cols; c += NT) {
        float x = X_[p.offX + base + c];
        q = fma(x, x, q);
    }
    float d = max(sqrt(wg_sum(q)), p.eps);
    for (uint c = t; c < p.cols; c += NT) {
        Y_[p.offY + base + c] = X_[p.offX + base + c] / d;
    }
}
