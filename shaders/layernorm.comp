#version 450
// gpu.LayerNorm: one workgroup per row, two passes for the statistics (mean,
// then the biased variance around it) and one for the output.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) readonly buffer BufG { float G_[]; };
layout(binding = 2) readonly buffer BufB { float B_[]; };
layout(binding = 3) writeonly buffer BufY { float Y_[]; };
layout(binding = 4) writeonly buffer BufMean { float Mean_[]; };
layout(binding = 5) writeonly buffer BufRstd { float Rstd_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offX, offG, offB, offY, offMean, offRstd;
    uint flags; // bit 0: write Mean, bit 1: write Rstd
    float eps;
} p;

void main() {
    uint row = group_linear();
    if (row >= p.rows) {
        return;
    }
    uint xb = p.offX + row * p.cols;
    uint t = gl_LocalInvocationID.x;
    float n = float(p.cols);

    float s = 0.0;
    for (uint c = t; c < p.cols; c += NT) {
        s += X_[xb + c];
    }
    float mean = wg_sum(s) / n;

    float q = 0.0;
    for (uint c = t; c < p.cols; c += NT) {
        float d = X_[xb + c] - mean;
        q = fma(d, d, q);
    }
    float var = wg_sum(q) / n;
    float rstd = 1.0 / sqrt(var + p.eps);

    for (uint c = t; c < p.cols; c += NT) {
        float y = (X_[xb + c] - mean) * rstd;
        Y_[p.offY + row * p.cols + c] = fma(y, G_[p.offG + c], B_[p.offB + c]);
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
