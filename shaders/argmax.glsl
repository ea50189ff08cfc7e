// gpu.ArgMax: Y[r] = index of the largest value of X[r, :]; ties go to the
// lowest index, NaNs are ignored, a row of only NaNs gives 0. One workgroup
// per row: the largest value first, then the lowest index that holds it.
//
// With NLL (argmax_nll.comp, ArgMax.NLL) the same pass over the row also
// keeps cross_entropy.comp's running (max, sum of exp) per invocation
// (reduce.glsl's push_lse, wg_lse_sum), so that NLL[r] = (M - X[r, Y[r]])
// + log S is what cross_entropy.comp writes for the label Y[r] (eps 0), bit
// for bit. A row that holds a NaN gets NaN, found from the values' bits:
// Vulkan's float arithmetic need not carry a NaN through (no NaN-preserving
// float controls), and lavapipe's does not.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) writeonly buffer BufY { int Y_[]; };
#ifdef NLL
layout(binding = 2) writeonly buffer BufNLL { float NLL_[]; };
#endif

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offX, offY;
#ifdef NLL
    uint offNLL;
#endif
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
#ifdef NLL
    float m = uintBitsToFloat(0xff800000u);
    float s = 0.0;
    float sawNaN = 0.0;
#endif
    for (uint c = t; c < p.cols; c += NT) {
        float v = X_[xb + c];
        if (!nan_bits(v) && (bi == 0xffffffffu || v > bv)) {
            bv = v;
            bi = c;
        }
#ifdef NLL
        if (nan_bits(v)) {
            sawNaN = 1.0;
        }
        push_lse(m, s, v);
#endif
    }
    float best = wg_max(bv);
    uint idx = wg_min_u(bi != 0xffffffffu && bv == best ? bi : 0xffffffffu);
    idx = idx == 0xffffffffu ? 0u : idx;
#ifdef NLL
    float M = wg_max(m);
    float S = wg_lse_sum(m, s, M);
    bool anyNaN = wg_max(sawNaN) > 0.0;
#endif
    if (t == 0) {
        Y_[p.offY + row] = int(idx);
#ifdef NLL
        NLL_[p.offNLL + row] = anyNaN ? uintBitsToFloat(0x7fc00000u) : (M - X_[xb + idx]) + log(S);
#endif
    }
}
