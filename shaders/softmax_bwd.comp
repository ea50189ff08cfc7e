#version 450
// gpu.SoftmaxBackward: DX[r] = scale * Y[r] * (DY[r] - dot(DY[r], Y[r])); one
// workgroup per row. DX may alias DY or Y: every invocation reads its
// elements before writing them.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufY { float Y_[]; };
layout(binding = 1) readonly buffer BufDY { float DY_[]; };
layout(binding = 2) writeonly buffer BufDX { float DX_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offY, offDY, offDX;
    float scale;
} p;

void main() {
    uint row = group_linear();
    if (row >= p.rows) {
        return;
    }
    uint t = gl_LocalInvocationID.x;
    uint base = row * p.cols;
    float d = 0.0;
    for (uint c = t; c < p.cols; c += NT) {
        d = fma(Y_[p.offY + base + c], DY_[p.offDY + base + c], d);
    }
    float dot = wg_sum(d);
    for (uint c = t; c < p.cols; c += NT) {
        float y = Y_[p.offY + base + c];
        DX_[p.offDX + base + c] = p.scale * y * (DY_[p.offDY + base + c] - dot);
    }
}
