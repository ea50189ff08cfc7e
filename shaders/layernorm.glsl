// gpu.LayerNorm: one workgroup per row, two passes for the statistics (mean,
// then the biased variance around it) and one for the output. With a
// residual R every pass reads the fp32 sum X + R (the same bits each
// time), and the first writes it to S where asked. layernorm.comp writes
// an f32 Y, layernorm_h.comp (HALF_Y) a 16-bit one, its type (DT_F16,
// DT_BF16) the specialization constant YT, rounded to nearest even.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) readonly buffer BufG { float G_[]; };
layout(binding = 2) readonly buffer BufB { float B_[]; };
#ifdef HALF_Y
#include "half.glsl"
layout(constant_id = 1) const uint YT = DT_F16;
layout(binding = 3) writeonly buffer BufY { uint16_t Y_[]; };
#define STY(i, v) Y_[i] = uint16_t(narrow16(YT, v))
#else
layout(binding = 3) writeonly buffer BufY { float Y_[]; };
#define STY(i, v) Y_[i] = (v)
#endif
layout(binding = 4) writeonly buffer BufMean { float Mean_[]; };
layout(binding = 5) writeonly buffer BufRstd { float Rstd_[]; };
layout(binding = 6) readonly buffer BufR { float R_[]; };
layout(binding = 7) writeonly buffer BufS { float S_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offX, offG, offB, offY, offMean, offRstd;
    uint flags; // bit 0: write Mean, bit 1: write Rstd, bit 2: add R, bit 3: write S
    float eps;
    uint offR, offS;
} p;

// in is the row's element c: X, or X + R.
float in_(uint row, uint c) {
    float v = X_[p.offX + row * p.cols + c];
    if ((p.flags & 4u) != 0) {
        v += R_[p.offR + row * p.cols + c];
    }
    return v;
}

void main() {
    uint row = group_linear();
    if (row >= p.rows) {
        return;
    }
    uint t = gl_LocalInvocationID.x;
    float n = float(p.cols);
    const bool writeS = (p.flags & 8u) != 0;

    float s = 0.0;
    for (uint c = t; c < p.cols; c += NT) {
        float v = in_(row, c);
        s += v;
        if (writeS) {
            S_[p.offS + row * p.cols + c] = v;
        }
    }
    float mean = wg_sum(s) / n;

    float q = 0.0;
    for (uint c = t; c < p.cols; c += NT) {
        float d = in_(row, c) - mean;
        q = fma(d, d, q);
    }
    float var = wg_sum(q) / n;
    float rstd = 1.0 / sqrt(var + p.eps);

    for (uint c = t; c < p.cols; c += NT) {
        float y = (in_(row, c) - mean) * rstd;
        STY(p.offY + row * p.cols + c, fma(y, G_[p.offG + c], B_[p.offB + c]));
    }
    if (t == 0) {
        if ((p.flags & 1u) != 0) {
            Mean_[p.offMean + row] = mean;
        }
        if ((p.flags & 2u) != 0) {
            Rstd_[p.offRstd + row] = rstd;
        }
    }
}
