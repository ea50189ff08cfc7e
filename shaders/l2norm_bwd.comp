#version 450
// gpu.L2NormalizeBackward: with n = ||X[r]||, DX[r] = (DY[r] - X[r] *
// dot(X[r], DY[r]) / n^2) / n where n >= eps, else DY[r] / eps; one workgroup
// per row. DX may alias DY.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) readonly buffer BufDY { float DY_[]; };
layout(binding = 2) writeonly buffer BufDX { float DX_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offX, offDY, offDX;
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
    float d = 0.0;
    for (uint c = t; c < p.cols; c += NT) {
        float x = X_[p.offX + base + c];
        q = fma(x, x, q);
        d = fma(x, DY_[p.offDY + base + c], d);
    }
    float ss = wg_sum(q);
    float dot = wg_sum(d);
    float n = sqrt(ss);
    bool through = n >= p.eps;
    float k = through ? dot / ss : 0.0;
    float inv = 1.0 / (through ? n : p.eps);
    for (uint c = t; c < p.cols; c += NT) {
        float x = X_[p.offX + base + c];
        DX_[p.offDX + base + c] = (DY_[p.offDY + base + c] - x * k) * inv;
    }
}
