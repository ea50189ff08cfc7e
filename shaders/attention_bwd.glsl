// gpu.AttentionBackward, flash-attention-2 style, in two kinds of pass that
// each own their outputs (no atomics: deterministic):
//
//   MODE 0, dQ: one workgroup per (tile of BR queries, head, batch) walks
//     the key tiles like attention.comp: P = exp(s - LSE) from the
//     recomputed scores, dP = dO V^T, dS = P * (dP - Delta), dQ += dS K.
//   MODE 1..3, dK and dV: one workgroup per (tile of BC keys, head, batch)
//     walks the query tiles that see its keys: dV += P^T dO (MODE 1, 2) and
//     dK += dS^T Q (MODE 1, 3). MODE 1 writes both into the one OUT binding
//     (DK at offOut, DV at offOut2); 2 and 3 are the halves for when DK and
//     DV cannot share a binding.
//
// Delta = rowsum(dO * O) is computed where it is needed, from O. Row maxima
// are not needed: LSE normalises P directly, and is +Inf for a row without
// keys (P = 0 there). The invocation layout is attention.comp's: t = 8*tr +
// tc, 4 rows (queries in MODE 0, keys otherwise) per invocation as vec4
// components, columns tc + 8j, output columns 4*(tc + 8g) ...
//
// F16 (gpu.AttentionBackward.F16, the half-precision products where no
// tensor-core kernel runs them): Q, K, V and dO are rounded to f16 on their
// way into shared memory, where only the products read them; Delta reads dO
// from memory unrounded instead. P and dS are rounded as they are stored
// for the dV, dQ and dK products, after dS took the unrounded P. Without
// F16 nothing is rounded: the fp32 arithmetic is unchanged.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 64;   // (rows per workgroup)/4 row groups of 8
layout(constant_id = 1) const uint BR = 32;   // query rows per tile, a multiple of 8 (of 4 in MODE 0)
layout(constant_id = 2) const uint BC = 32;   // keys per tile, a multiple of 8 (of 4 in MODE 1..3)
layout(constant_id = 3) const uint DP = 64;   // D rounded up to a multiple of 32
layout(constant_id = 4) const uint VEC = 1;   // vec4 global access
layout(constant_id = 5) const uint SHUF = 1;  // subgroup shuffles for the row reductions
layout(constant_id = 6) const uint MODE = 0;  // 0: dQ, 1: dK and dV, 2: dV, 3: dK
layout(constant_id = 7) const uint F16 = 0;   // f16-rounded products (see above)

#include "attention.glsl"
#include "half.glsl"

layout(binding = 0) readonly buffer BufQ { float Q_[]; };
layout(binding = 0) readonly buffer BufQ4 { vec4 Q4_[]; };
layout(binding = 1) readonly buffer BufK { float K_[]; };
layout(binding = 1) readonly buffer BufK4 { vec4 K4_[]; };
layout(binding = 2) readonly buffer BufV { float V_[]; };
layout(binding = 2) readonly buffer BufV4 { vec4 V4_[]; };
#ifdef HALF_QKV
// attention_bwd_h.comp: Q, K and V stored in 16 bits (16-bit activations),
// their type the specialization constant QT, widened on load.
layout(constant_id = 8) const uint QT = DT_F16;
layout(binding = 0) readonly buffer BufQh { uint16_t Qh_[]; };
layout(binding = 1) readonly buffer BufKh { uint16_t Kh_[]; };
layout(binding = 2) readonly buffer BufVh { uint16_t Vh_[]; };
#endif
layout(binding = 3) readonly buffer BufO { float O_[]; };
layout(binding = 3) readonly buffer BufO4 { vec4 O4_[]; };
layout(binding = 4) readonly buffer BufDO { float DO_[]; };
layout(binding = 4) readonly buffer BufDO4 { vec4 DO4_[]; };
layout(binding = 5) readonly buffer BufLSE { float L_[]; };
layout(binding = 6) readonly buffer BufMask { float M_[]; };
layout(binding = 7) writeonly buffer BufOut { float G_[]; };
layout(binding = 7) writeonly buffer BufOut4 { vec4 G4_[]; };

layout(push_constant) uniform Push {
    uint Tq, Tk, H, D;
    uint offQ, offK, offV, offO, offDO, offL, offM, offOut, offOut2;
    uint tokQ, tokK, tokV, tokO;
    uint batQ, batK, batV, batO;
    float scale;
    uint flags;     // 1: mask, 2: causal
    uint tileBase;  // row tile of workgroup x = 0
    uint headBase;  // head of workgroup y = 0
} p;

const uint DP4 = DP / 4;
const uint KS = DP4 + 1;  // padded row stride (vec4) of row-major tiles
const bool DQ = MODE == 0;
const bool WANT_DV = MODE == 1 || MODE == 2;
const bool WANT_DK = MODE == 1 || MODE == 3;
const uint NG = DP / 32;  // output column groups per invocation

// Rows owned by the workgroup (queries in MODE 0, keys otherwise) and the
// tiles walked (keys in MODE 0, queries otherwise).
const uint RW = DQ ? BR : BC;
const uint CW = DQ ? BC : BR;
const uint RW4 = RW / 4;
const uint PS = RW4 + 1;  // transposed-tile row stride (vec4)
const uint NJ = CW / 8;

// Resident, transposed, for the workgroup's rows: MODE 0: Q^T and dO^T;
// otherwise K^T and V^T.
shared vec4 sAt[DP * RW4];
shared vec4 sBt[DP * RW4];
// Per walked tile, row-major with padded rows: MODE 0: K and V; otherwise Q
// and dO.
shared vec4 sX[CW * KS];
shared vec4 sY[CW * KS];
// Transposed probabilities and score gradients of the tile:
// sP[c*PS + r/4][r%4] for walked column c, owned row r.
shared vec4 sP[CW * PS];
shared vec4 sS[CW * PS];
shared float sC1[CW]; // MODE 0: the tile's mask; otherwise the tile's LSE
shared float sC2[CW]; // otherwise: the tile's Delta

#ifdef HALF_QKV
ATT_LOAD16(loadQ, Qh_, QT)
ATT_LOAD16(loadK, Kh_, QT)
ATT_LOAD16(loadV, Vh_, QT)
#else
ATT_LOAD4(loadQ, Q_, Q4_)
ATT_LOAD4(loadK, K_, K4_)
ATT_LOAD4(loadV, V_, V4_)
#endif
ATT_LOAD4(loadO, O_, O4_)
ATT_LOAD4(loadDO, DO_, DO4_)
ATT_STORE4(storeG, G_, G4_)

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

// Stores the transposed row v (4 columns d..d+3 of row r) into sAt / sBt.
void putT(bool second, uint r, uint d, vec4 v) {
    uint a = d * RW4 + r / 4, c = r % 4;
    if (second) {
        sBt[a][c] = v.x;
        sBt[a + RW4][c] = v.y;
        sBt[a + 2 * RW4][c] = v.z;
        sBt[a + 3 * RW4][c] = v.w;
    } else {
        sAt[a][c] = v.x;
        sAt[a + RW4][c] = v.y;
        sAt[a + 2 * RW4][c] = v.z;
        sAt[a + 3 * RW4][c] = v.w;
    }
}

// The two products of a tile, for column groups j < jn (0 for the others):
// s[j] = A[rows 4*tr..] . X[column tc + 8j] (MODE 0: Q . K, else K . Q) and
// dp[j] = B[rows] . Y[column] (MODE 0: dO . V, else V . dO; not in MODE 2).
void products(out vec4 s[NJ], out vec4 dp[NJ], uint tr, uint tc, uint jn) {
    [[unroll]] for (uint j = 0; j < NJ; j++) {
        s[j] = vec4(0.0);
        dp[j] = vec4(0.0);
    }
    for (uint d4 = 0; d4 < DP4; d4++) {
        vec4 a0 = sAt[(4 * d4) * RW4 + tr];
        vec4 a1 = sAt[(4 * d4 + 1) * RW4 + tr];
        vec4 a2 = sAt[(4 * d4 + 2) * RW4 + tr];
        vec4 a3 = sAt[(4 * d4 + 3) * RW4 + tr];
        vec4 b0 = vec4(0.0), b1 = vec4(0.0), b2 = vec4(0.0), b3 = vec4(0.0);
        if (DQ || WANT_DK) {
            b0 = sBt[(4 * d4) * RW4 + tr];
            b1 = sBt[(4 * d4 + 1) * RW4 + tr];
            b2 = sBt[(4 * d4 + 2) * RW4 + tr];
            b3 = sBt[(4 * d4 + 3) * RW4 + tr];
        }
        [[unroll]] for (uint j = 0; j < NJ; j++) {
            if (j < jn) {
                vec4 x = sX[(tc + 8 * j) * KS + d4];
                s[j] = fma(a0, vec4(x.x), s[j]);
                s[j] = fma(a1, vec4(x.y), s[j]);
                s[j] = fma(a2, vec4(x.z), s[j]);
                s[j] = fma(a3, vec4(x.w), s[j]);
                if (DQ || WANT_DK) {
                    vec4 y = sY[(tc + 8 * j) * KS + d4];
                    dp[j] = fma(b0, vec4(y.x), dp[j]);
                    dp[j] = fma(b1, vec4(y.y), dp[j]);
                    dp[j] = fma(b2, vec4(y.z), dp[j]);
                    dp[j] = fma(b3, vec4(y.w), dp[j]);
                }
            }
        }
    }
}

void main() {
    const uint t = gl_LocalInvocationIndex;
    const uint tr = t / 8, tc = t % 8;
    const uint r0 = (gl_WorkGroupID.x + p.tileBase) * RW;
    const uint h = gl_WorkGroupID.y + p.headBase;
    const uint b = gl_WorkGroupID.z;
    const uint D = p.D;
    const bool hasMask = (p.flags & 1u) != 0;
    const bool causal = (p.flags & 2u) != 0;
    const uint nRows = DQ ? p.Tq : p.Tk;
    if (r0 >= nRows) {
        return;
    }
    const uint rEnd = min(r0 + RW, nRows);
    const uint qBase = p.offQ + b * p.batQ + h * D;
    const uint kBase = p.offK + b * p.batK + h * D;
    const uint vBase = p.offV + b * p.batV + h * D;
    const uint oBase = p.offO + b * p.batO + h * D;
    const uint doBase = p.offDO + b * p.batO + h * D;
    const uint lBase = p.offL + (b * p.H + h) * p.Tq;
    const int shift = int(p.Tk) - int(p.Tq); // query i sees keys j <= i + shift
    const float scale = p.scale;

    // The owned rows, transposed, and their per-row constants.
    for (uint i = t; i < RW * DP4; i += NT) {
        uint r = i / DP4, d4 = i % DP4;
        bool ok = r0 + r < nRows;
        if (DQ) {
            putT(false, r, 4 * d4, ok ? h4(loadQ(qBase + (r0 + r) * p.tokQ, 4 * d4, D)) : vec4(0.0));
            putT(true, r, 4 * d4, ok ? h4(loadDO(doBase + (r0 + r) * p.tokO, 4 * d4, D)) : vec4(0.0));
        } else {
            putT(false, r, 4 * d4, ok ? h4(loadK(kBase + (r0 + r) * p.tokK, 4 * d4, D)) : vec4(0.0));
            if (WANT_DK) {
                putT(true, r, 4 * d4, ok ? h4(loadV(vBase + (r0 + r) * p.tokV, 4 * d4, D)) : vec4(0.0));
            }
        }
    }
    const vec4 rowIdx = vec4(r0 + 4 * tr) + vec4(0.0, 1.0, 2.0, 3.0);
    vec4 lse = vec4(0.0), delta = vec4(0.0), keyMask = vec4(0.0);
    if (DQ) {
        [[unroll]] for (uint e = 0; e < 4; e++) {
            uint row = r0 + 4 * tr + e;
            lse[e] = row < p.Tq ? L_[lBase + row] : ATT_INF;
        }
    } else {
        [[unroll]] for (uint e = 0; e < 4; e++) {
            uint key = r0 + 4 * tr + e;
            keyMask[e] = key < p.Tk ? (hasMask ? M_[p.offM + b * p.Tk + key] : 0.0) : ATT_NEG_INF;
        }
    }
    barrier();
    if (DQ) {
        // Delta of the owned rows: dO from sBt (from memory under F16,
        // where sBt holds it rounded), O from memory.
        vec4 part = vec4(0.0);
        [[unroll]] for (uint g = 0; g < NG; g++) {
            uint d = 4 * (tc + 8 * g);
            vec4 d0 = sBt[d * RW4 + tr], d1 = sBt[(d + 1) * RW4 + tr];
            vec4 d2 = sBt[(d + 2) * RW4 + tr], d3 = sBt[(d + 3) * RW4 + tr];
            [[unroll]] for (uint e = 0; e < 4; e++) {
                uint row = r0 + 4 * tr + e;
                vec4 ov = row < p.Tq ? loadO(oBase + row * p.tokO, d, D) : vec4(0.0);
                vec4 dov = vec4(d0[e], d1[e], d2[e], d3[e]);
                if (F16 != 0) {
                    dov = row < p.Tq ? loadDO(doBase + row * p.tokO, d, D) : vec4(0.0);
                }
                part[e] += dot(dov, ov);
            }
        }
        delta = sum8(part);
    }

    // The walked range: MODE 0 the keys rows r0..rEnd-1 see; otherwise the
    // queries that see keys r0..rEnd-1.
    uint c0 = 0, cEnd = DQ ? p.Tk : p.Tq;
    if (causal) {
        if (DQ) {
            cEnd = uint(clamp(int(rEnd) + shift, 0, int(p.Tk)));
        } else {
            c0 = uint(clamp(int(r0) - shift, 0, int(p.Tq)));
        }
    }

    vec4 acc[NG * 4];  // dQ, or dK in MODE 1 and 3
    vec4 acc2[NG * 4]; // dV in MODE 1, 2
    [[unroll]] for (uint i = 0; i < NG * 4; i++) {
        acc[i] = vec4(0.0);
        acc2[i] = vec4(0.0);
    }

    for (uint k0 = c0; k0 < cEnd; k0 += CW) {
        const uint nk = min(CW, cEnd - k0);
        barrier(); // the previous tile is consumed
        for (uint i = t; i < CW * DP4; i += NT) {
            uint c = i / DP4, d4 = i % DP4;
            bool ok = c < nk;
            uint cc = k0 + c;
            if (DQ) {
                sX[c * KS + d4] = ok ? h4(loadK(kBase + cc * p.tokK, 4 * d4, D)) : vec4(0.0);
                sY[c * KS + d4] = ok ? h4(loadV(vBase + cc * p.tokV, 4 * d4, D)) : vec4(0.0);
            } else {
                sX[c * KS + d4] = ok ? h4(loadQ(qBase + cc * p.tokQ, 4 * d4, D)) : vec4(0.0);
                sY[c * KS + d4] = ok ? h4(loadDO(doBase + cc * p.tokO, 4 * d4, D)) : vec4(0.0);
            }
        }
        for (uint c = t; c < CW; c += NT) {
            if (DQ) {
                sC1[c] = c < nk ? (hasMask ? M_[p.offM + b * p.Tk + k0 + c] : 0.0) : ATT_NEG_INF;
            } else {
                sC1[c] = c < nk ? L_[lBase + k0 + c] : ATT_INF;
            }
        }
        barrier();
        if (!DQ && WANT_DK) {
            // Delta of the tile's queries, eight lanes per row, dO from sY
            // (from memory under F16, where sY holds it rounded).
            // (The trip count is the same in every invocation: sum8 may
            // need barriers.)
            for (uint rb = 0; rb < CW; rb += RW4) {
                uint r = rb + tr;
                float part = 0.0;
                if (r < nk) {
                    [[unroll]] for (uint g = 0; g < NG; g++) {
                        uint d = 4 * (tc + 8 * g);
                        vec4 dov = F16 != 0 ? loadDO(doBase + (k0 + r) * p.tokO, d, D) : sY[r * KS + tc + 8 * g];
                        part += dot(dov, loadO(oBase + (k0 + r) * p.tokO, d, D));
                    }
                }
                part = sum8(vec4(part)).x;
                if (tc == 0 && r < CW) {
                    sC2[r] = part;
                }
            }
            barrier();
        }

        // s[j]: scores of the owned rows against column tc + 8j of the tile
        // (MODE 0: rows are queries, columns keys; otherwise transposed);
        // dp[j]: dO . V likewise.
        vec4 s[NJ], dp[NJ];
        if (nk == CW) {
            products(s, dp, tr, tc, NJ);
        } else {
            products(s, dp, tr, tc, (nk + 7) / 8);
        }
        [[unroll]] for (uint j = 0; j < NJ; j++) {
            uint c = tc + 8 * j;
            vec4 pj, ds;
            if (DQ) {
                // rows: queries rowIdx; column: key k0 + c
                vec4 z = fma(s[j], vec4(scale), vec4(sC1[c]));
                if (causal) {
                    z = mix(z, vec4(ATT_NEG_INF), greaterThan(vec4(float(k0 + c)), rowIdx + float(shift)));
                }
                pj = exp2((z - lse) * ATT_LOG2E);
                ds = pj * (dp[j] - delta);
            } else {
                // rows: keys rowIdx; column: query k0 + c
                vec4 z = fma(s[j], vec4(scale), keyMask);
                if (causal) {
                    z = mix(z, vec4(ATT_NEG_INF), greaterThan(rowIdx, vec4(float(int(k0 + c) + shift))));
                }
                pj = exp2((z - vec4(sC1[c])) * ATT_LOG2E);
                ds = WANT_DK ? pj * (dp[j] - vec4(sC2[c])) : vec4(0.0);
            }
            if (DQ || WANT_DK) {
                sS[c * PS + tr] = h4(ds);
            }
            if (WANT_DV) {
                sP[c * PS + tr] = h4(pj);
            }
        }
        barrier();
        for (uint c = 0; c < nk; c++) {
            if (DQ || WANT_DK) {
                // dQ += dS K (MODE 0), dK += dS^T Q
                vec4 sv = sS[c * PS + tr];
                [[unroll]] for (uint g = 0; g < NG; g++) {
                    vec4 x = sX[c * KS + tc + 8 * g];
                    acc[g * 4] = fma(vec4(sv.x), x, acc[g * 4]);
                    acc[g * 4 + 1] = fma(vec4(sv.y), x, acc[g * 4 + 1]);
                    acc[g * 4 + 2] = fma(vec4(sv.z), x, acc[g * 4 + 2]);
                    acc[g * 4 + 3] = fma(vec4(sv.w), x, acc[g * 4 + 3]);
                }
            }
            if (WANT_DV) {
                // dV += P^T dO
                vec4 pv = sP[c * PS + tr];
                [[unroll]] for (uint g = 0; g < NG; g++) {
                    vec4 y = sY[c * KS + tc + 8 * g];
                    acc2[g * 4] = fma(vec4(pv.x), y, acc2[g * 4]);
                    acc2[g * 4 + 1] = fma(vec4(pv.y), y, acc2[g * 4 + 1]);
                    acc2[g * 4 + 2] = fma(vec4(pv.z), y, acc2[g * 4 + 2]);
                    acc2[g * 4 + 3] = fma(vec4(pv.w), y, acc2[g * 4 + 3]);
                }
            }
        }
    }

    [[unroll]] for (uint e = 0; e < 4; e++) {
        uint row = r0 + 4 * tr + e;
        if (row < nRows) {
            [[unroll]] for (uint g = 0; g < NG; g++) {
                uint d = 4 * (tc + 8 * g);
                if (DQ) {
                    storeG(p.offOut + b * p.batQ + h * D + row * p.tokQ, d, D, acc[g * 4 + e] * scale);
                } else {
                    if (WANT_DK) {
                        storeG(p.offOut + b * p.batK + h * D + row * p.tokK, d, D, acc[g * 4 + e] * scale);
                    }
                    if (WANT_DV) {
                        uint off = MODE == 1 ? p.offOut2 : p.offOut;
                        storeG(off + b * p.batV + h * D + row * p.tokV, d, D, acc2[g * 4 + e]);
                    }
                }
            }
        }
    }
}
