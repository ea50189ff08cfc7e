#version 450
// gpu.ArgMax with NLL: argmax.comp's pick, and in the same pass over the
// row cross_entropy.comp's running (max, sum of exp) per invocation, so
// that NLL[r] = (M - X[r, Y[r]]) + log S is what cross_entropy.comp writes
// for the label Y[r] (eps 0), bit for bit: the same recurrence, the same
// reductions. A row that holds a NaN gets NaN (cross_entropy.comp's
// exp_acc would not carry it).
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) writeonly buffer BufY { int Y_[]; };
layout(binding = 2) writeonly buffer BufNLL { float NLL_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offX, offY, offNLL;
} p;

void main() {
    uint row = group_linear();
    if (row >= p.rows) {
        return;
    }
    const float NEG_INF = uintBitsToFloat(0xff800000u);
    uint xb = p.offX + row * p.cols;
    uint t = gl_LocalInvocationID.x;
    float bv = NEG_INF;
    uint bi = 0xffffffffu;
    float m = NEG_INF;
    float s = 0.0;
    float sawNaN = 0.0;
    for (uint c = t; c < p.cols; c += NT) {
        float v = X_[xb + c];
        if (nan_bits(v)) {
            sawNaN = 1.0;
        }
        if (!nan_bits(v) && (bi == 0xffffffffu || v > bv)) {
            bv = v;
            bi = c;
        }
        if (v > m) {
            s = s * exp_acc(m - v) + 1.0;
            m = v;
        } else if (v != NEG_INF) {
            s += exp_acc(v - m);
        }
    }
    float best = wg_max(bv);
    uint idx = wg_min_u(bi != 0xffffffffu && bv == best ? bi : 0xffffffffu);
    idx = idx == 0xffffffffu ? 0u : idx;
    float M = wg_max(m);
    float S = wg_sum(m == NEG_INF ? 0.0 : s * exp_acc(m - M));
    bool anyNaN = wg_max(sawNaN) > 0.0;
    if (t == 0) {
        Y_[p.offY + row] = int(idx);
        NLL_[p.offNLL + row] = anyNaN ? uintBitsToFloat(0x7fc00000u) : (M - X_[xb + idx]) + log(S);
    }
}
