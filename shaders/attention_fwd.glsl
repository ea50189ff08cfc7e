// gpu.Attention, the fused forward (flash attention): one workgroup per
// (tile of BR queries, head, batch) walks the keys in tiles of BC, with an
// online softmax, so the Tq x Tk scores never leave the chip.
//
// Invocation t is lane tc = t % 8 of row group tr = t / 8 and owns query rows
// 4*tr .. 4*tr+3 of the tile (the four components of its vec4s). For each key
// tile it computes the scores of its rows against keys tc, tc+8, ... (Q^T and
// K staged in shared memory), the row maxima over the eight lanes of its
// group (subgroup shuffles), the probabilities P (to shared memory,
// transposed), then O[rows, 4*(tc + 8g) .. +3] += P V for its column groups
// g. The row sums stay per lane until the end. Shared memory holds Q^T (DP x
// BR), one K and one V tile (BC x DP) and P^T (BC x BR): nothing grows with
// Tq or Tk.
//
// A query row with no visible key (every score -Inf) gives zeros and LSE +Inf.
//
// F16 (gpu.Attention.F16, the half-precision products where no tensor-core
// kernel runs them): Q, K and V are rounded to f16 on their way into shared
// memory, and a first pass over the key tiles takes the row maxima alone,
// so that the second shifts every probability by its row's final maximum
// (alpha is then 1) before rounding it to f16 for P V; the row sums add the
// unrounded probabilities. Without F16 that pass does not run and nothing
// is rounded: the fp32 arithmetic is unchanged.
//
// attention.comp reads and writes f32; attention_h.comp (HALF_O) takes
// 16-bit activations (graph's): Q, K and V of the type QT, widened on load,
// and O of the type OT, rounded to nearest even on store (specialization
// constants: DT_F32, DT_F16 or DT_BF16 each).
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 128;  // invocations: BR/4 row groups of 8
layout(constant_id = 1) const uint BR = 64;   // query rows per workgroup, a multiple of 4
layout(constant_id = 2) const uint BC = 32;   // keys per tile, a multiple of 8
layout(constant_id = 3) const uint DP = 64;   // D rounded up to a multiple of 32
layout(constant_id = 4) const uint VEC = 1;   // vec4 global access (D, strides, offsets % 4 == 0)
layout(constant_id = 5) const uint SHUF = 1;  // subgroup shuffles for the row reductions
layout(constant_id = 6) const uint F16 = 0;   // f16-rounded products (see above)

#include "attention.glsl"
#include "half.glsl"

layout(binding = 0) readonly buffer BufQ { float Q_[]; };
layout(binding = 0) readonly buffer BufQ4 { vec4 Q4_[]; };
layout(binding = 1) readonly buffer BufK { float K_[]; };
layout(binding = 1) readonly buffer BufK4 { vec4 K4_[]; };
layout(binding = 2) readonly buffer BufV { float V_[]; };
layout(binding = 2) readonly buffer BufV4 { vec4 V4_[]; };
layout(binding = 3) writeonly buffer BufO { float O_[]; };
layout(binding = 3) writeonly buffer BufO4 { vec4 O4_[]; };
#ifdef HALF_O
layout(constant_id = 7) const uint OT = DT_F16;
layout(constant_id = 8) const uint QT = DT_F32;
layout(binding = 0) readonly buffer BufQh { uint16_t Qh_[]; };
layout(binding = 1) readonly buffer BufKh { uint16_t Kh_[]; };
layout(binding = 2) readonly buffer BufVh { uint16_t Vh_[]; };
layout(binding = 3) writeonly buffer BufOh { uint16_t Oh_[]; };
#endif
layout(binding = 4) readonly buffer BufMask { float M_[]; };
layout(binding = 5) writeonly buffer BufLSE { float L_[]; };

layout(push_constant) uniform Push {
    uint Tq, Tk, H, D;
    uint offQ, offK, offV, offO, offM, offL;
    uint tokQ, tokK, tokV, tokO;
    uint batQ, batK, batV, batO;
    float scale;
    uint flags;     // 1: mask, 2: causal, 4: LSE
    uint tileBase;  // query tile of workgroup x = 0
    uint headBase;  // head of workgroup y = 0
} p;

const uint DP4 = DP / 4;   // vec4 per row of D
const uint KS = DP4 + 1;   // K row stride in vec4 (padded against bank conflicts)
const uint BR4 = BR / 4;
const uint PS = BR4 + 1;   // P^T row stride in vec4
const uint NJ = BC / 8;    // key columns per invocation
const uint NG = DP / 32;   // vec4 column groups of O per invocation

shared vec4 sQt[DP * BR4]; // sQt[d*BR4 + r/4][r%4] = Q[r][d]
shared vec4 sK[BC * KS];   // sK[c*KS + d/4] = K[c][d..d+3]
shared vec4 sV[BC * DP4];  // sV[c*DP4 + d/4] = V[c][d..d+3]
shared vec4 sP[BC * PS];   // sP[c*PS + r/4][r%4] = P[r][c]
shared float sM[BC];       // additive mask of the tile's keys; -Inf past Tk

ATT_LOAD4(loadQ32, Q_, Q4_)
ATT_LOAD4(loadK32, K_, K4_)
ATT_LOAD4(loadV32, V_, V4_)
ATT_STORE4(storeO32, O_, O4_)
#ifdef HALF_O
ATT_LOAD16(loadQ16, Qh_, QT)
ATT_LOAD16(loadK16, Kh_, QT)
ATT_LOAD16(loadV16, Vh_, QT)
vec4 loadQ(uint i, uint d, uint D) { return QT == DT_F32 ? loadQ32(i, d, D) : loadQ16(i, d, D); }
vec4 loadK(uint i, uint d, uint D) { return QT == DT_F32 ? loadK32(i, d, D) : loadK16(i, d, D); }
vec4 loadV(uint i, uint d, uint D) { return QT == DT_F32 ? loadV32(i, d, D) : loadV16(i, d, D); }
void storeO(uint i, uint d, uint D, vec4 v) {
    if (OT == DT_F32) {
        storeO32(i, d, D, v);
        return;
    }
    [[unroll]] for (uint e = 0; e < 4; e++) {
        if (d + e < D) {
            Oh_[i + d + e] = uint16_t(narrow16(OT, v[e]));
        }
    }
}
#else
#define loadQ loadQ32
#define loadK loadK32
#define loadV loadV32
#define storeO storeO32
#endif

// x rounded to f16 (to nearest even, gpu.Round's bits) under F16.
vec4 h4(vec4 x) {
    if (F16 == 0) {
        return x;
    }
    for (uint e = 0; e < 4; e++) { // a loop, not four inlined copies
        x[e] = f16_bits_to_f32(f32_to_f16_bits(x[e]));
    }
    return x;
}

// s[j] = Q[rows 4*tr..] . K[key tc + 8j] for j < jn (0 for the others).
void scores(out vec4 s[NJ], uint tr, uint tc, uint jn) {
    [[unroll]] for (uint j = 0; j < NJ; j++) {
        s[j] = vec4(0.0);
    }
    for (uint d4 = 0; d4 < DP4; d4++) {
        vec4 a0 = sQt[(4 * d4) * BR4 + tr];
        vec4 a1 = sQt[(4 * d4 + 1) * BR4 + tr];
        vec4 a2 = sQt[(4 * d4 + 2) * BR4 + tr];
        vec4 a3 = sQt[(4 * d4 + 3) * BR4 + tr];
        [[unroll]] for (uint j = 0; j < NJ; j++) {
            if (j < jn) {
                vec4 kv = sK[(tc + 8 * j) * KS + d4];
                s[j] = fma(a0, vec4(kv.x), s[j]);
                s[j] = fma(a1, vec4(kv.y), s[j]);
                s[j] = fma(a2, vec4(kv.z), s[j]);
                s[j] = fma(a3, vec4(kv.w), s[j]);
            }
        }
    }
}

void main() {
    const uint t = gl_LocalInvocationIndex;
    const uint tr = t / 8, tc = t % 8;
    const uint q0 = (gl_WorkGroupID.x + p.tileBase) * BR;
    const uint h = gl_WorkGroupID.y + p.headBase;
    const uint b = gl_WorkGroupID.z;
    const uint D = p.D;
    const bool hasMask = (p.flags & 1u) != 0;
    const bool causal = (p.flags & 2u) != 0;
    if (q0 >= p.Tq) {
        return; // whole workgroup: no barrier is skipped by part of it
    }
    const uint qEnd = min(q0 + BR, p.Tq);
    const uint qBase = p.offQ + b * p.batQ + h * D;
    const uint kBase = p.offK + b * p.batK + h * D;
    const uint vBase = p.offV + b * p.batV + h * D;
    const uint oBase = p.offO + b * p.batO + h * D;
    // Keys seen by the last row of the tile; query i sees j <= i + Tk - Tq.
    uint kEnd = p.Tk;
    if (causal) {
        kEnd = uint(clamp(int(qEnd) + int(p.Tk) - int(p.Tq), 0, int(p.Tk)));
    }

    for (uint i = t; i < BR * DP4; i += NT) {
        uint r = i / DP4, d4 = i % DP4;
        vec4 v = q0 + r < p.Tq ? h4(loadQ(qBase + (q0 + r) * p.tokQ, 4 * d4, D)) : vec4(0.0);
        uint a = 4 * d4 * BR4 + r / 4, c = r % 4;
        sQt[a][c] = v.x;
        sQt[a + BR4][c] = v.y;
        sQt[a + 2 * BR4][c] = v.z;
        sQt[a + 3 * BR4][c] = v.w;
    }

    vec4 m = vec4(ATT_NEG_INF); // running row maxima (rows 4*tr + component)
    vec4 l = vec4(0.0);         // this lane's share of the row sums
    vec4 o[NG * 4];             // o[g*4 + e]: row 4*tr+e, columns 4*(tc+8g) ..
    [[unroll]] for (uint i = 0; i < NG * 4; i++) {
        o[i] = vec4(0.0);
    }
    const vec4 rowIdx = vec4(q0 + 4 * tr) + vec4(0.0, 1.0, 2.0, 3.0);
    const float shift = float(int(p.Tk) - int(p.Tq));

    // Pass 0 (F16 only) takes the row maxima; pass 1 is the attention.
    for (uint pass = F16 != 0 ? 0 : 1; pass < 2; pass++) {
        for (uint k0 = 0; k0 < kEnd; k0 += BC) {
            const uint nk = min(BC, kEnd - k0);
            barrier(); // the previous tile's sK, sV, sP are consumed
            for (uint i = t; i < BC * DP4; i += NT) {
                uint c = i / DP4, d4 = i % DP4;
                bool ok = c < nk;
                sK[c * KS + d4] = ok ? h4(loadK(kBase + (k0 + c) * p.tokK, 4 * d4, D)) : vec4(0.0);
                if (pass == 1) {
                    sV[c * DP4 + d4] = ok ? h4(loadV(vBase + (k0 + c) * p.tokV, 4 * d4, D)) : vec4(0.0);
                }
            }
            for (uint c = t; c < BC; c += NT) {
                sM[c] = c < nk ? (hasMask ? M_[p.offM + b * p.Tk + k0 + c] : 0.0) : ATT_NEG_INF;
            }
            barrier();

            // Scores of rows 4*tr.. against keys tc + 8j (only the column
            // groups holding keys in the last, partial tile).
            vec4 s[NJ];
            if (nk == BC) {
                scores(s, tr, tc, NJ);
            } else {
                scores(s, tr, tc, (nk + 7) / 8);
            }
            vec4 mx = vec4(ATT_NEG_INF);
            [[unroll]] for (uint j = 0; j < NJ; j++) {
                uint c = tc + 8 * j;
                vec4 z = fma(s[j], vec4(p.scale), vec4(sM[c]));
                if (causal) {
                    // key k0+c is hidden from row i when k0+c > i + Tk - Tq
                    bvec4 hide = greaterThan(vec4(float(k0 + c)), rowIdx + shift);
                    z = mix(z, vec4(ATT_NEG_INF), hide);
                }
                s[j] = z;
                mx = max(mx, z);
            }
            mx = max8(mx);
            if (pass == 0) {
                m = max(m, mx);
                continue;
            }
            vec4 mNew = max(m, mx);
            bvec4 none = equal(mNew, vec4(ATT_NEG_INF));
            vec4 mSafe = mix(mNew, vec4(0.0), none);
            vec4 alpha = exp2((m - mSafe) * ATT_LOG2E);
            m = mNew;
            l *= alpha;
            [[unroll]] for (uint g = 0; g < NG; g++) {
                [[unroll]] for (uint e = 0; e < 4; e++) {
                    o[g * 4 + e] *= alpha[e];
                }
            }
            [[unroll]] for (uint j = 0; j < NJ; j++) {
                vec4 pj = exp2((s[j] - mSafe) * ATT_LOG2E);
                l += pj;
                sP[(tc + 8 * j) * PS + tr] = h4(pj);
            }
            barrier();

            for (uint c = 0; c < nk; c++) {
                vec4 pv = sP[c * PS + tr];
                [[unroll]] for (uint g = 0; g < NG; g++) {
                    vec4 vv = sV[c * DP4 + tc + 8 * g];
                    o[g * 4] = fma(vec4(pv.x), vv, o[g * 4]);
                    o[g * 4 + 1] = fma(vec4(pv.y), vv, o[g * 4 + 1]);
                    o[g * 4 + 2] = fma(vec4(pv.z), vv, o[g * 4 + 2]);
                    o[g * 4 + 3] = fma(vec4(pv.w), vv, o[g * 4 + 3]);
                }
            }
        }
    }

    l = sum8(l);
    const bool wantLSE = (p.flags & 4u) != 0;
    [[unroll]] for (uint e = 0; e < 4; e++) {
        uint row = q0 + 4 * tr + e;
        if (row < p.Tq) {
            float inv = l[e] > 0.0 ? 1.0 / l[e] : 0.0;
            [[unroll]] for (uint g = 0; g < NG; g++) {
                storeO(oBase + row * p.tokO, 4 * (tc + 8 * g), D, o[g * 4 + e] * inv);
            }
            if (wantLSE && tc == 0) {
                L_[p.offL + (b * p.H + h) * p.Tq + row] = l[e] > 0.0 ? m[e] + log(l[e]) : ATT_INF;
            }
        }
    }
}
