// gpu.AttentionBackward with F16 (half-precision products, the backward of
// mixed-precision training) on tensor cores (cooperative matrices): all
// five products of the flash-attention backward as f16 x f16 + f32
// fragment products, the elementwise work in fp32 between them.
//
// Two kinds of pass, as in attention_bwd.comp, each owning its outputs
// (no atomics: deterministic), chosen by MODE:
//
//   MODE 0, dQ: a workgroup owns 64 queries of one (batch, head) and walks
//     the key tiles they see;
//   MODE 1, dK and dV: a workgroup owns 64 keys and walks the query tiles
//     that see them; it writes dK at offOut (flag 4) and dV at offOut2
//     (flag 8) of the one output binding, both where they share a buffer,
//     else one per dispatch (attention_bwd.comp's MODE 2 and 3 as flags,
//     not pipelines: each costs lavapipe minutes to build).
//
// Both are one computation over "rows" (the owned 64: queries in MODE 0,
// keys otherwise) and "columns" (the walked tile of BT):
//
//   X, Y: the rows' f16(Q), f16(DO) in MODE 0; f16(K), f16(V) in MODE 1,
//         held in registers as A fragments for the whole walk;
//   U, W: the tile's f16(K), f16(V) in MODE 0; f16(Q), f16(DO) in MODE 1,
//         in shared memory;
//   S = X U^T (the scores, transposed in MODE 1), G = Y W^T (dP, or its
//   transpose): accumulator fragments, then per element, in fp32,
//     P = exp(Scale * S + Mask[key] - LSE[query]), 0 where hidden,
//     dS = P * (G - Delta[query]), Delta = DO . O (unrounded),
//   and f16(dS), f16(P) into shared memory as A fragments:
//   acc1 += f16(dS) U  (dQ, or dK), acc2 += f16(P) W (dV; MODE 1).
//   At the end dQ and dK are scaled by Scale.
//
// That is gpu.AttentionBackward.F16's definition; the CPU backend computes
// it row by row, so the two differ by fp32 summation order (and a P or dS
// that this moves across an f16 rounding boundary).
//
// The elementwise step runs per subgroup on its own 16 rows: S and then G
// go through the subgroup's part of one fp32 tile (S read into registers
// first), so that it needs neither a second tile nor a workgroup barrier.
//
// Workgroup: four subgroups (WG = 4 * the device's subgroup size), 16 rows
// each. Head dimensions up to DMAX = 64, D padded to DP (16, 32 or 64) with
// zeros in every staged operand, rounded to f16 on the way into shared
// memory. The walked tiles are fetched as vec4s into registers, the next
// tile's loads in flight while the current one multiplies, where D, the
// offsets and strides of Q, K, V and DO allow (flag 16); otherwise, and for
// the rows' own operands (loaded once), element by element, consecutive
// invocations on consecutive elements of a row. Rows past Tq or Tk are
// zeros; a query past Tq or with no visible key (LSE +Inf) and a hidden
// key get P = 0, so nothing of them reaches the sums.
//
// Shared memory: sH (f16, 64 x 72: X, then Y, then each tile's U and W),
// sF (fp32, 64 x 36), sDS and sP (f16, 64 x 40 each) and three arrays of
// 64 floats: 29,440 bytes, under lavapipe's 32 KiB.
//
// Written against GL_NV_cooperative_matrix and translated to the Khronos
// extension by shaders/nv2khr: every matrix has one use, none crosses a
// function call, no element of one is touched.
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_spirv_intrinsics : require
#extension GL_EXT_shader_16bit_storage : require

#include "gemm_round.glsl"

// OpExecutionMode RoundingModeRTE 16, as in gemm_coop.glsl (stripped, with
// SWR set, on devices without it: gpu/vk/rounding.go).
spirv_execution_mode(extensions = ["SPV_KHR_float_controls"], capabilities = [4467], 4462, 16);

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;   // invocations: four subgroups, 32 .. 256
layout(constant_id = 1) const uint DP = 64;    // D padded to 16, 32 or 64
layout(constant_id = 2) const uint MODE = 0;   // 0: dQ, 1: dK and dV
layout(constant_id = 3) const bool SWR = false; // round in integers (no RTE mode)
// QKV16 reads Q, K and V stored in f16 (16-bit activations), which round
// to themselves.
layout(constant_id = 4) const bool QKV16 = false;

const bool DQ = MODE == 0;
const uint BR = 64;          // owned rows per workgroup (16 per subgroup)
const uint BT = 32;          // columns per walked tile
const uint DMAX = 64;
const uint SD = DMAX + 8;    // row stride (f16) of sH
const uint SS = BT + 4;      // row stride (fp32) of sF
const uint SPK = BT + 8;     // row stride (f16) of sDS, sP
const uint NI = 16 / FRAG;   // fragment rows per subgroup
const uint ND = DMAX / FRAG; // fragments across D (those past DP skipped)
const uint NK = BT / FRAG;   // fragments across a tile
const uint SG = WG / 4;      // subgroup size
const uint NE = 16 * BT / SG; // elements of its rows' tile per invocation

layout(binding = 0) readonly buffer BufQ { float Q_[]; };
layout(binding = 1) readonly buffer BufK { float K_[]; };
layout(binding = 2) readonly buffer BufV { float V_[]; };
layout(binding = 3) readonly buffer BufO { float O_[]; };
layout(binding = 4) readonly buffer BufDO { float DO_[]; };
layout(binding = 0) readonly buffer BufQ4 { vec4 Q4_[]; };
layout(binding = 1) readonly buffer BufK4 { vec4 K4_[]; };
layout(binding = 2) readonly buffer BufV4 { vec4 V4_[]; };
layout(binding = 0) readonly buffer BufQh { float16_t Qh_[]; };
layout(binding = 1) readonly buffer BufKh { float16_t Kh_[]; };
layout(binding = 2) readonly buffer BufVh { float16_t Vh_[]; };
layout(binding = 0) readonly buffer BufQh4 { f16vec4 Qh4_[]; };
layout(binding = 1) readonly buffer BufKh4 { f16vec4 Kh4_[]; };
layout(binding = 2) readonly buffer BufVh4 { f16vec4 Vh4_[]; };
layout(binding = 4) readonly buffer BufDO4 { vec4 DO4_[]; };
layout(binding = 5) readonly buffer BufLSE { float L_[]; };
layout(binding = 6) readonly buffer BufMask { float M_[]; };
layout(binding = 7) writeonly buffer BufOut { float G_[]; };

// attention_bwd.comp's push constants.
layout(push_constant) uniform Push {
    uint Tq, Tk, H, D;
    uint offQ, offK, offV, offO, offDO, offL, offM, offOut, offOut2;
    uint tokQ, tokK, tokV, tokO;
    uint batQ, batK, batV, batO;
    float scale;
    uint flags;     // 1: mask, 2: causal; MODE 1: 4: write dK, 8: write dV; 16: vec4 tiles
    uint tileBase;  // row tile of workgroup x = 0
    uint headBase;  // head of workgroup y = 0
} p;

shared float16_t sH[BR * SD];
shared float sF[BR * SS];
shared float16_t sDS[BR * SPK];
shared float16_t sP[BR * SPK];
shared float sMk[BR];    // per key: its mask (-Inf past Tk)
shared float sL[BR];     // per query: LSE (+Inf past Tq)
shared float sDelta[BR]; // per query: DO . O

#define NEG_INF uintBitsToFloat(0xff800000u)
#define POS_INF uintBitsToFloat(0x7f800000u)
const float LOG2E = 1.44269504088896341f;

#define CM16 fcoopmatNV<16, gl_ScopeSubgroup, FRAG, FRAG>
#define CM32 fcoopmatNV<32, gl_ScopeSubgroup, FRAG, FRAG>

float16_t r16(float x) {
    return SWR ? float16_t(rnd16(x)) : float16_t(x);
}

void subgroupSync() {
    controlBarrier(gl_ScopeSubgroup, gl_ScopeSubgroup, gl_StorageSemanticsShared, gl_SemanticsAcquireRelease);
}

// Element d of row r (token) of Q, K, V or DO (which: 0..3) at batch b,
// head h; 0 past n rows or past D.
float operand(uint which, uint b, uint h, uint r, uint n, uint d) {
    if (r >= n || d >= p.D) {
        return 0.0;
    }
    const uint hd = h * p.D + d;
    switch (which) {
    case 0u:
        return QKV16 ? float(Qh_[p.offQ + b * p.batQ + r * p.tokQ + hd]) : Q_[p.offQ + b * p.batQ + r * p.tokQ + hd];
    case 1u:
        return QKV16 ? float(Kh_[p.offK + b * p.batK + r * p.tokK + hd]) : K_[p.offK + b * p.batK + r * p.tokK + hd];
    case 2u:
        return QKV16 ? float(Vh_[p.offV + b * p.batV + r * p.tokV + hd]) : V_[p.offV + b * p.batV + r * p.tokV + hd];
    default:
        return DO_[p.offDO + b * p.batO + r * p.tokO + hd];
    }
}

// stage rounds rows r0 .. r0+nr-1 (of n) of operand which into sH rows
// at .. at+nr-1, columns 0 .. DP-1.
void stage(uint which, uint b, uint h, uint r0, uint nr, uint n, uint at) {
    for (uint i = gl_LocalInvocationIndex; i < nr * DP; i += WG) {
        uint r = i / DP, d = i % DP;
        sH[(at + r) * SD + d] = r16(operand(which, b, h, r0 + r, n, d));
    }
}

// The walked tile's U and W as vec4s in registers (flag 16): fetchTile
// issues all of an invocation's loads together, storeTile rounds them into
// sH rows 0 .. BT-1 (U) and BT .. 2BT-1 (W).
const uint LT = (BT * DP / 4 + WG - 1) / WG; // vec4s per invocation and operand
vec4 ru[LT], rw[LT];

// operand4 is elements d .. d+3 (d a multiple of 4, D too) of row r of Q,
// K, V or DO (which: 0..3); zeros past n rows or past D.
vec4 operand4(uint which, uint b, uint h, uint r, uint n, uint d) {
    if (r >= n || d >= p.D) {
        return vec4(0.0);
    }
    const uint hd = h * p.D + d;
    switch (which) {
    case 0u:
        return QKV16 ? vec4(Qh4_[(p.offQ + b * p.batQ + r * p.tokQ + hd) / 4]) : Q4_[(p.offQ + b * p.batQ + r * p.tokQ + hd) / 4];
    case 1u:
        return QKV16 ? vec4(Kh4_[(p.offK + b * p.batK + r * p.tokK + hd) / 4]) : K4_[(p.offK + b * p.batK + r * p.tokK + hd) / 4];
    case 2u:
        return QKV16 ? vec4(Vh4_[(p.offV + b * p.batV + r * p.tokV + hd) / 4]) : V4_[(p.offV + b * p.batV + r * p.tokV + hd) / 4];
    default:
        return DO4_[(p.offDO + b * p.batO + r * p.tokO + hd) / 4];
    }
}

void fetchTile(uint wu, uint ww, uint b, uint h, uint c0, uint n) {
    [[unroll]] for (uint l = 0; l < LT; l++) {
        const uint i = gl_LocalInvocationIndex + l * WG;
        const uint r = i / (DP / 4), d = (i % (DP / 4)) * 4;
        const bool ok = i < BT * DP / 4;
        ru[l] = ok ? operand4(wu, b, h, c0 + r, n, d) : vec4(0.0);
        rw[l] = ok ? operand4(ww, b, h, c0 + r, n, d) : vec4(0.0);
    }
}

void storeTile() {
    [[unroll]] for (uint l = 0; l < LT; l++) {
        const uint i = gl_LocalInvocationIndex + l * WG;
        if (i < BT * DP / 4) {
            const uint o = (i / (DP / 4)) * SD + (i % (DP / 4)) * 4;
            [[unroll]] for (uint e = 0; e < 4; e++) {
                sH[o + e] = r16(ru[l][e]);
                sH[BT * SD + o + e] = r16(rw[l][e]);
            }
        }
    }
}

// deltas writes sDelta[c] = DO . O (fp32, unrounded) and sL[c] = LSE for
// queries q0 + c, c < nr (+Inf and 0 past Tq): G = WG / nr invocations per
// query (at least 1), each a strided share of D, their partial sums
// (through sF) added in a fixed order. Ends with a barrier.
void deltas(uint b, uint h, uint q0, uint nr) {
    const uint t = gl_LocalInvocationIndex;
    const uint G = max(1u, WG / nr);
    const uint part = t % G;
    for (uint c = t / G; c < nr; c += WG / G) {
        const uint q = q0 + c;
        float s = 0.0;
        if (q < p.Tq) {
            const uint ob = p.offO + b * p.batO + q * p.tokO + h * p.D;
            const uint db = p.offDO + b * p.batO + q * p.tokO + h * p.D;
            for (uint d = part; d < p.D; d += G) {
                s = fma(DO_[db + d], O_[ob + d], s);
            }
        }
        sF[c * G + part] = s;
    }
    barrier();
    for (uint c = t; c < nr; c += WG) {
        const uint q = q0 + c;
        float s = 0.0;
        for (uint e = 0; e < G; e++) {
            s += sF[c * G + e];
        }
        sDelta[c] = s;
        sL[c] = q < p.Tq ? L_[p.offL + (b * p.H + h) * p.Tq + q] : POS_INF;
    }
    barrier();
}

void main() {
    const uint t = gl_LocalInvocationIndex;
    const uint lane = gl_SubgroupInvocationID; // SG of them (the dispatcher's WG)
    const uint sm = gl_SubgroupID * 16; // the subgroup's first row
    const uint r0 = (gl_WorkGroupID.x + p.tileBase) * BR;
    const uint h = gl_WorkGroupID.y + p.headBase;
    const uint b = gl_WorkGroupID.z;
    const bool hasMask = (p.flags & 1u) != 0;
    const bool causal = (p.flags & 2u) != 0;
    const bool vec = (p.flags & 16u) != 0;
    const uint nRows = DQ ? p.Tq : p.Tk;
    const uint nCols = DQ ? p.Tk : p.Tq;
    if (r0 >= nRows) {
        return; // whole workgroup
    }
    const int shift = int(p.Tk) - int(p.Tq); // query i sees key j <= i + shift
    // The walked columns: keys up to the last one the block's last query
    // sees, or queries from the first one that sees the block's first key.
    uint cBegin = 0, cEnd = nCols;
    if (causal) {
        if (DQ) {
            cEnd = uint(clamp(int(min(r0 + BR, p.Tq)) + shift, 0, int(p.Tk)));
        } else {
            cBegin = uint(clamp(int(r0) - shift, 0, int(p.Tq)));
        }
    }

    // The rows' operands into A fragments, and their per-row values.
    const uint wx = DQ ? 0u : 1u, wy = DQ ? 3u : 2u; // X, Y: Q, DO or K, V
    const uint wu = DQ ? 1u : 0u, ww = DQ ? 2u : 3u; // U, W: K, V or Q, DO
    CM16 xf[NI][ND], yf[NI][ND];
    stage(wx, b, h, r0, BR, nRows, 0);
    barrier();
    [[unroll]] for (uint i = 0; i < NI; i++) {
        [[unroll]] for (uint j = 0; j < ND; j++) {
            if (FRAG * j < DP) {
                coopMatLoadNV(xf[i][j], sH, (sm + FRAG * i) * SD + FRAG * j, SD, false);
            }
        }
    }
    barrier();
    stage(wy, b, h, r0, BR, nRows, 0);
    barrier();
    [[unroll]] for (uint i = 0; i < NI; i++) {
        [[unroll]] for (uint j = 0; j < ND; j++) {
            if (FRAG * j < DP) {
                coopMatLoadNV(yf[i][j], sH, (sm + FRAG * i) * SD + FRAG * j, SD, false);
            }
        }
    }
    if (DQ) {
        deltas(b, h, r0, BR);
    } else {
        for (uint r = t; r < BR; r += WG) {
            const uint k = r0 + r;
            sMk[r] = k < p.Tk ? (hasMask ? M_[p.offM + b * p.Tk + k] : 0.0) : NEG_INF;
        }
    }

    CM32 acc1[NI][ND], acc2[NI][ND];
    [[unroll]] for (uint i = 0; i < NI; i++) {
        [[unroll]] for (uint j = 0; j < ND; j++) {
            acc1[i][j] = CM32(0.0);
            acc2[i][j] = CM32(0.0);
        }
    }

    float sv[NE]; // this invocation's scores of the tile (its subgroup's rows)
    if (vec && cBegin < cEnd) {
        fetchTile(wu, ww, b, h, cBegin, min(cBegin + BT, cEnd));
    }
    for (uint c0 = cBegin; c0 < cEnd; c0 += BT) {
        const uint nc = min(BT, cEnd - c0);
        barrier(); // the previous tile's sH, sF and per-column values are consumed
        if (!DQ) {
            deltas(b, h, c0, BT); // (its barriers also order the staging below)
        }
        if (vec) {
            storeTile();
            if (c0 + BT < cEnd) {
                fetchTile(wu, ww, b, h, c0 + BT, min(c0 + 2 * BT, cEnd));
            }
        } else {
            stage(wu, b, h, c0, BT, c0 + nc, 0);
            stage(ww, b, h, c0, BT, c0 + nc, BT);
        }
        if (DQ) {
            for (uint c = t; c < BT; c += WG) {
                const uint k = c0 + c;
                sMk[c] = c < nc ? (hasMask ? M_[p.offM + b * p.Tk + k] : 0.0) : NEG_INF;
            }
        }
        barrier();

        // S = X U^T and G = Y W^T (U and W as column-major B fragments).
        CM32 s[NI][NK], g[NI][NK];
        [[unroll]] for (uint i = 0; i < NI; i++) {
            [[unroll]] for (uint j = 0; j < NK; j++) {
                s[i][j] = CM32(0.0);
                g[i][j] = CM32(0.0);
            }
        }
        [[unroll]] for (uint kd = 0; kd < ND; kd++) {
            if (FRAG * kd < DP) {
                [[unroll]] for (uint j = 0; j < NK; j++) {
                    CM16 uf, wf;
                    coopMatLoadNV(uf, sH, (FRAG * j) * SD + FRAG * kd, SD, true);
                    coopMatLoadNV(wf, sH, (BT + FRAG * j) * SD + FRAG * kd, SD, true);
                    [[unroll]] for (uint i = 0; i < NI; i++) {
                        s[i][j] = coopMatMulAddNV(xf[i][kd], uf, s[i][j]);
                        g[i][j] = coopMatMulAddNV(yf[i][kd], wf, g[i][j]);
                    }
                }
            }
        }

        // Per subgroup, its 16 rows: S through sF into registers, then G
        // through sF, then P and dS.
        [[unroll]] for (uint i = 0; i < NI; i++) {
            [[unroll]] for (uint j = 0; j < NK; j++) {
                coopMatStoreNV(s[i][j], sF, (sm + FRAG * i) * SS + FRAG * j, SS, false);
            }
        }
        subgroupSync();
        [[unroll]] for (uint e = 0; e < NE; e++) {
            const uint x = lane + e * SG;
            sv[e] = sF[(sm + x / BT) * SS + x % BT];
        }
        subgroupSync();
        [[unroll]] for (uint i = 0; i < NI; i++) {
            [[unroll]] for (uint j = 0; j < NK; j++) {
                coopMatStoreNV(g[i][j], sF, (sm + FRAG * i) * SS + FRAG * j, SS, false);
            }
        }
        subgroupSync();
        [[unroll]] for (uint e = 0; e < NE; e++) {
            const uint x = lane + e * SG;
            const uint r = sm + x / BT, c = x % BT;
            const uint qi = DQ ? r : c, ki = DQ ? c : r;       // indices into the per-query and per-key arrays
            const uint query = DQ ? r0 + r : c0 + c, key = DQ ? c0 + c : r0 + r;
            const float l = sL[qi];
            float pr = 0.0;
            if (l != POS_INF && !(causal && int(key) > int(query) + shift) && c < nc) {
                pr = exp2((fma(sv[e], p.scale, sMk[ki]) - l) * LOG2E);
            }
            const float ds = pr * (sF[r * SS + c] - sDelta[qi]);
            sDS[r * SPK + c] = r16(pr == 0.0 ? 0.0 : ds);
            if (!DQ) {
                sP[r * SPK + c] = r16(pr);
            }
        }
        subgroupSync();

        // acc1 += f16(dS) U, acc2 += f16(P) W (U, W as row-major B).
        [[unroll]] for (uint kk = 0; kk < NK; kk++) {
            CM16 af[NI], pf[NI];
            [[unroll]] for (uint i = 0; i < NI; i++) {
                coopMatLoadNV(af[i], sDS, (sm + FRAG * i) * SPK + FRAG * kk, SPK, false);
                if (!DQ) {
                    coopMatLoadNV(pf[i], sP, (sm + FRAG * i) * SPK + FRAG * kk, SPK, false);
                }
            }
            [[unroll]] for (uint j = 0; j < ND; j++) {
                if (FRAG * j < DP) {
                    CM16 ub;
                    coopMatLoadNV(ub, sH, (FRAG * kk) * SD + FRAG * j, SD, false);
                    [[unroll]] for (uint i = 0; i < NI; i++) {
                        acc1[i][j] = coopMatMulAddNV(af[i], ub, acc1[i][j]);
                    }
                    if (!DQ) {
                        CM16 wb;
                        coopMatLoadNV(wb, sH, (BT + FRAG * kk) * SD + FRAG * j, SD, false);
                        [[unroll]] for (uint i = 0; i < NI; i++) {
                            acc2[i][j] = coopMatMulAddNV(pf[i], wb, acc2[i][j]);
                        }
                    }
                }
            }
        }
    }

    // Out, per subgroup through its rows of sF, BT columns at a time:
    // dQ (MODE 0) or dK = Scale * acc1 at offOut with the Q or K layout;
    // dV = acc2 at offOut2 with V's.
    barrier(); // (no tile ran: sF's partial sums; else nothing pending)
    const bool wantAcc1 = DQ || (p.flags & 4u) != 0, wantAcc2 = !DQ && (p.flags & 8u) != 0;
    const uint tok1 = DQ ? p.tokQ : p.tokK, bat1 = DQ ? p.batQ : p.batK;
    const uint base1 = p.offOut + b * bat1 + h * p.D;
    const uint base2 = p.offOut2 + b * p.batV + h * p.D;
    [[unroll]] for (uint which = 0; which < 2; which++) {
        if (which == 0 ? !wantAcc1 : !wantAcc2) {
            continue;
        }
        [[unroll]] for (uint c0 = 0; c0 < DMAX; c0 += BT) {
            if (c0 < DP) {
                [[unroll]] for (uint i = 0; i < NI; i++) {
                    [[unroll]] for (uint j = 0; j < BT / FRAG; j++) {
                        if (c0 + FRAG * j < DP) {
                            if (which == 0) {
                                coopMatStoreNV(acc1[i][c0 / FRAG + j], sF, (sm + FRAG * i) * SS + FRAG * j, SS, false);
                            } else {
                                coopMatStoreNV(acc2[i][c0 / FRAG + j], sF, (sm + FRAG * i) * SS + FRAG * j, SS, false);
                            }
                        }
                    }
                }
                subgroupSync();
                const float f = which == 0 ? p.scale : 1.0;
                for (uint x = lane; x < 16 * BT; x += SG) {
                    const uint r = x / BT, d = c0 + x % BT;
                    const uint row = r0 + sm + r;
                    if (row < nRows && d < p.D) {
                        const uint o = which == 0 ? base1 + row * tok1 + d : base2 + row * p.tokV + d;
                        G_[o] = f * sF[(sm + r) * SS + x % BT];
                    }
                }
                subgroupSync();
            }
        }
    }
}
