#version 450
// gpu.LayerNormBackward, in two modes (MODE, a specialization constant):
//
// MODE 0: DX, one workgroup per row: with xhat = (X - mean) * rstd and
// g = DY * Gamma, DX = rstd * (g - mean(g) - xhat * mean(g * xhat)).
//
// MODE 1: the first stage of DGamma and DBeta (gpu.ColumnBlock rows per
// block): workgroup g takes the column tile g % tiles of row block
// part = g / tiles, each invocation one column, and writes the sums of
// DY * xhat and of DY over the block's rows, in row order, to row part of PG
// and PB (row stride ldp), adding to what they hold with acc (when a single
// block writes DGamma and DBeta directly). flags: bit 0 PG, bit 1 PB, bit 2
// acc.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
layout(constant_id = 1) const uint MODE = 0;
#include "reduce.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) readonly buffer BufDY { float DY_[]; };
layout(binding = 2) readonly buffer BufG { float G_[]; };
layout(binding = 3) readonly buffer BufMean { float Mean_[]; };
layout(binding = 4) readonly buffer BufRstd { float Rstd_[]; };
layout(binding = 5) writeonly buffer BufDX { float DX_[]; };
layout(binding = 6) buffer BufPG { float PG_[]; };
layout(binding = 7) buffer BufPB { float PB_[]; };

layout(push_constant) uniform Push {
    uint rows, cols;
    uint offX, offDY, offG, offMean, offRstd, offDX, offPG, offPB;
    uint block, ldp, flags;
} p;

void rowGrad() {
    uint row = group_linear();
    if (row >= p.rows) {
        return;
    }
    uint t = gl_LocalInvocationID.x;
    uint base = row * p.cols;
    float mean = Mean_[p.offMean + row];
    float rstd = Rstd_[p.offRstd + row];
    float a = 0.0;
    float b = 0.0;
    // g is precise (rounded before use, never fused into an fma) so that
    // both passes see the same value: with a large rstd, as for a constant
    // row, g - mean(g) amplifies any difference (a 1-column row must give 0).
    for (uint c = t; c < p.cols; c += NT) {
        precise float g = DY_[p.offDY + base + c] * G_[p.offG + c];
        float xh = (X_[p.offX + base + c] - mean) * rstd;
        a += g;
        b = fma(g, xh, b);
    }
    float n = float(p.cols);
    a = wg_sum(a) / n;
    b = wg_sum(b) / n;
    for (uint c = t; c < p.cols; c += NT) {
        precise float g = DY_[p.offDY + base + c] * G_[p.offG + c];
        float xh = (X_[p.offX + base + c] - mean) * rstd;
        DX_[p.offDX + base + c] = rstd * (g - a - xh * b);
    }
}

void partials() {
    uint g = group_linear();
    uint tiles = (p.cols + NT - 1) / NT;
    uint part = g / tiles;
    uint c = (g - part * tiles) * NT + gl_LocalInvocationID.x;
    uint r0 = part * p.block;
    if (c >= p.cols || r0 >= p.rows) {
        return;
    }
    uint r1 = min(p.rows, r0 + p.block);
    float sg = 0.0;
    float sb = 0.0;
    for (uint r = r0; r < r1; r++) {
        float dy = DY_[p.offDY + r * p.cols + c];
        float xh = (X_[p.offX + r * p.cols + c] - Mean_[p.offMean + r]) * Rstd_[p.offRstd + r];
        sg = fma(dy, xh, sg);
        sb += dy;
    }
    bool acc = (p.flags & 4u) != 0;
    uint o = part * p.ldp + c;
    if ((p.flags & 1u) != 0) {
        PG_[p.offPG + o] = acc ? PG_[p.offPG + o] + sg : sg;
    }
    if ((p.flags & 2u) != 0) {
        PB_[p.offPB + o] = acc ? PB_[p.offPB + o] + sb : sb;
    }
}

void main() {
    if (MODE == 0) {
        rowGrad();
    } else {
        partials();
    }
}
