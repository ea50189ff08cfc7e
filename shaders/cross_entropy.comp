#version 450
// gpu.CrossEntropy: one workgroup per row. Pass 1 keeps a running (max, sum
// of exp) per invocation, like softmax.comp, and the sum of (z - z[y]); pass 2
// writes the gradient. With lse = M + log S and d = M - z[y]:
//   loss = (1-eps)*(lse - z[y]) + eps*(lse - mean z) = d + log S - eps*mean(z - z[y])
//   DLogits[c] = scale * (exp(z[c] - M)/S - eps/cols - (1-eps)*[c == y])
// A label outside [0, cols) gives loss 0 and a zero row. DLogits may alias
// Logits: z[y] is read before the first barrier and every invocation reads
// its elements before writing them.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufZ { float Z_[]; };
layout(binding = 1) readonly buffer BufL { int L_[]; };
layout(binding = 2) writeonly buffer BufLoss { float Loss_[]; };
layout(binding = 3) writeonly buffer BufD { float D_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offZ, offL, offLoss, offD;
    uint flags; // bit 0: Loss, bit 1: DLogits
    float eps, scale;
} p;

void main() {
    uint row = group_linear();
    if (row >= p.rows) {
        return;
    }
    const float NEG_INF = uintBitsToFloat(0xff800000u);
    uint t = gl_LocalInvocationID.x;
    uint zb = p.offZ + row * p.cols;
    uint db = p.offD + row * p.cols;
    bool wantLoss = (p.flags & 1u) != 0;
    bool wantGrad = (p.flags & 2u) != 0;
    int y = L_[p.offL + row];
    if (y < 0 || y >= int(p.cols)) {
        if (wantLoss && t == 0) {
            Loss_[p.offLoss + row] = 0.0;
        }
        if (wantGrad) {
            for (uint c = t; c < p.cols; c += NT) {
                D_[db + c] = 0.0;
            }
        }
        return;
    }
    float zy = Z_[zb + uint(y)];

    float m = NEG_INF;
    float s = 0.0;
    float sd = 0.0;
    for (uint c = t; c < p.cols; c += NT) {
        float v = Z_[zb + c];
        sd += v - zy;
        push_lse(m, s, v);
    }
    float M = wg_max(m);
    float S = wg_lse_sum(m, s, M);
    float SD = wg_sum(sd);
    float n = float(p.cols);

    if (wantLoss && t == 0) {
        float l = (M - zy) + log(S);
        if (p.eps != 0.0) {
            l -= p.eps * (SD / n); // skipped for eps 0: SD may be -Inf
        }
        Loss_[p.offLoss + row] = l;
    }
    if (wantGrad) {
        float u = p.eps / n;
        float hit = 1.0 - p.eps;
        for (uint c = t; c < p.cols; c += NT) {
            float g = exp_acc(Z_[zb + c] - M) / S - u;
            if (c == uint(y)) {
                g -= hit;
            }
            D_[db + c] = p.scale * g;
        }
    }
}
