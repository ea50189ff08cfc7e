// gpu.Attention with F16 (half-precision products) on tensor cores
// (cooperative matrices): S = Q K^T and O += P V as f16 x f16 + f32
// fragment products, the softmax in fp32 between them.
//
// A workgroup of four subgroups (WG = 4 * the device's subgroup size)
// owns BQ = 64 query rows of one (batch, head); subgroup s owns rows
// 16s .. 16s+15 as 16/FRAG fragment rows. Q is rounded to f16 on its way
// into shared memory and then held in registers (A fragments) for the
// whole walk over the keys, which come in tiles of BK = 32: K and V tiles
// rounded to f16 in shared memory (K read as a column-major B, V as a
// row-major B).
//
// Two passes over the key tiles, so that every probability is rounded to
// f16 after the shift by its row's final maximum (gpu.Attention.F16's
// definition, which the CPU backend implements directly) and so that the
// O accumulators never need a per-row rescale, which a cooperative matrix
// cannot take without element access (that nv2khr does not translate):
//
//   1. S tiles only: each tile goes through shared memory (fp32) where the
//      invocations take their rows' maxima (TPR invocations per row, each
//      a strided share of the columns, combined once at the end).
//   2. S tiles again (the same products, so the same bits), then
//      p = exp(s - m) in fp32, its fp32 row sum, and f16(p) into shared
//      memory as an A fragment; O += P V stays in accumulator fragments
//      across the tiles. At the end O goes through shared memory once, to
//      be scaled by 1/l and written out.
//
// The first pass doubles the Q K^T products (1.5x the tensor work of a
// one-pass kernel at D = 64): correctness and a backend-independent
// definition first.
//
// Head dimensions up to DMAX = 64: DP (a specialization constant) is D
// padded to a multiple of 16 (the dispatcher picks 16, 32 or 64);
// fragments past DP are skipped and columns D .. DP-1 are zero in Q, K and
// V, so they add nothing. Keys past the tile's end and causally hidden keys
// get -Inf scores; the K and V rows past the end are zeros, not whatever
// memory holds (a NaN there would survive the -Inf score and the zero
// probability). A row with no visible key keeps m = -Inf, uses 0 as its
// shift (so p = 0), and gives zeros and LSE +Inf, as attention.comp does.
//
// Shared memory: sH (f16, 64 x 72: Q, then the K and V tiles), sP (f16,
// 64 x 40), sF (fp32, 64 x 68: a score tile of stride 36, the reductions,
// then the output tile) and two small arrays: 32,128 bytes.
//
// Written against GL_NV_cooperative_matrix (what Debian 12's glslc
// compiles) and translated to the Khronos extension by shaders/nv2khr
// (attention_coop_khr.spv, attention_coop8_khr.spv): every matrix has one
// use (Q, P: A; K, V: B; S, O: accumulators), no matrix crosses a function
// call, no element of a matrix is touched.
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_spirv_intrinsics : require
#extension GL_EXT_shader_16bit_storage : require

#include "gemm_round.glsl"

// OpExecutionMode RoundingModeRTE 16, as in gemm_coop.glsl: the
// conversions to f16 round to nearest even (or, stripped, SWR below).
spirv_execution_mode(extensions = ["SPV_KHR_float_controls"], capabilities = [4467], 4462, 16);

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128; // invocations: four subgroups, 32 .. 256
layout(constant_id = 1) const uint DP = 64;  // D padded to a multiple of 16, at most DMAX
// Invocations per row in the softmax, each taking every TPR-th column:
// WG / 64 or more (so that the rows are covered), at most WG / 16 (so that
// an invocation has at most four rows). The dispatcher uses max(1, WG/64);
// the tests also run other values, to cover on lavapipe (WG = 32) the
// shared reductions that NVIDIA's workgroups of 128 take.
layout(constant_id = 2) const uint TPR = 2;
// SWR rounds to f16 in integer arithmetic, for devices without the
// RoundingModeRTE mode (gpu/vk/rounding.go strips it from the module).
layout(constant_id = 3) const bool SWR = false;
// O16 writes O in f16 (16-bit activations: the input of the next f16
// product), rounded as the staging rounds (r16).
layout(constant_id = 4) const bool O16 = false;
// QKV16 reads Q, K and V stored in f16 (16-bit activations: the fused qkv
// projection's output), which round to themselves.
layout(constant_id = 5) const bool QKV16 = false;

const uint BQ = 64;          // query rows per workgroup (16 per subgroup)
const uint BK = 32;          // keys per tile
const uint DMAX = 64;        // largest head dimension
const uint SD = DMAX + 8;    // row stride (f16) of Q, K, V in sH
const uint SPK = BK + 8;     // row stride (f16) of sP
const uint SS = BK + 4;      // row stride (fp32) of a score tile in sF
const uint SO = DMAX + 4;    // row stride (fp32) of the output tile in sF
const uint NI = 16 / FRAG;   // fragment rows per subgroup
const uint ND = DMAX / FRAG; // fragments across D (those past DP skipped)
const uint NK = BK / FRAG;   // fragments across a key tile
const uint RSTEP = WG / TPR;   // rows covered by one sweep of the workgroup
const uint RPT = BQ / RSTEP;   // rows per invocation: r = t / TPR + i * RSTEP, i < RPT <= 4

layout(binding = 0) readonly buffer BufQ { float Q_[]; };
layout(binding = 1) readonly buffer BufK { float K_[]; };
layout(binding = 2) readonly buffer BufV { float V_[]; };
layout(binding = 1) readonly buffer BufK4 { vec4 K4_[]; };
layout(binding = 2) readonly buffer BufV4 { vec4 V4_[]; };
layout(binding = 3) writeonly buffer BufO { float O_[]; };
layout(binding = 3) writeonly buffer BufOh { float16_t Oh_[]; };
layout(binding = 0) readonly buffer BufQh { float16_t Qh_[]; };
layout(binding = 1) readonly buffer BufKh { float16_t Kh_[]; };
layout(binding = 2) readonly buffer BufVh { float16_t Vh_[]; };
layout(binding = 1) readonly buffer BufKh4 { f16vec4 Kh4_[]; };
layout(binding = 2) readonly buffer BufVh4 { f16vec4 Vh4_[]; };
#define LDQ(i) (QKV16 ? float(Qh_[i]) : Q_[i])
#define LDK(i) (QKV16 ? float(Kh_[i]) : K_[i])
#define LDV(i) (QKV16 ? float(Vh_[i]) : V_[i])
#define LDK4(i) (QKV16 ? vec4(Kh4_[i]) : K4_[i])
#define LDV4(i) (QKV16 ? vec4(Vh4_[i]) : V4_[i])
layout(binding = 4) readonly buffer BufMask { float M_[]; };
layout(binding = 5) writeonly buffer BufLSE { float L_[]; };

// attention.comp's push constants.
layout(push_constant) uniform Push {
    uint Tq, Tk, H, D;
    uint offQ, offK, offV, offO, offM, offL;
    uint tokQ, tokK, tokV, tokO;
    uint batQ, batK, batV, batO;
    float scale;
    uint flags;     // 1: mask, 2: causal, 4: LSE, 8: vec4 K and V (gpu/vk/attention_coop.go)
    uint tileBase;  // query tile of workgroup x = 0
    uint headBase;  // head of workgroup y = 0
} p;

shared float16_t sH[BQ * SD]; // Q rows; then K rows 0..BK-1, V rows BK..2BK-1
shared float16_t sP[BQ * SPK];
shared float sF[BQ * SO];
shared float sMk[BK];         // the tile's additive mask; -Inf past its end
shared float sInv[BQ];        // 1 / row sum (0 for an empty row)

#define NEG_INF uintBitsToFloat(0xff800000u)
#define POS_INF uintBitsToFloat(0x7f800000u)
const float LOG2E = 1.44269504088896341f;

#define CM16 fcoopmatNV<16, gl_ScopeSubgroup, FRAG, FRAG>
#define CM32 fcoopmatNV<32, gl_ScopeSubgroup, FRAG, FRAG>

// x rounded to f16 (round to nearest even, gpu.Round's bits): the
// conversion under the module's rounding mode, or with SWR rnd16 first
// (its result is an f16 value that any conversion keeps).
float16_t r16(float x) {
    return SWR ? float16_t(rnd16(x)) : float16_t(x);
}

// vec4 staging of the K and V tiles, where D, the token and batch strides
// and the offsets of K and V are multiples of 4 (flag 8): each tile is
// fetched into registers (all of an invocation's loads issued together)
// while the previous one is in use, then rounded into sH. Elsewhere the
// tiles are loaded element by element when they are needed.
const uint LKV = (BK * DP / 4 + WG - 1) / WG; // vec4s per invocation and tile
vec4 rk[LKV], rv[LKV];

void fetchKV(uint t, uint k0, uint nk, uint kBase, uint vBase, bool withV) {
    [[unroll]] for (uint l = 0; l < LKV; l++) {
        uint i = t + l * WG;
        uint c = i / (DP / 4), d = (i % (DP / 4)) * 4;
        bool ok = i < BK * DP / 4 && c < nk && d < p.D;
        rk[l] = ok ? LDK4((kBase + (k0 + c) * p.tokK + d) / 4) : vec4(0.0);
        if (withV) {
            rv[l] = ok ? LDV4((vBase + (k0 + c) * p.tokV + d) / 4) : vec4(0.0);
        }
    }
}

void storeKV(uint t, bool withV) {
    [[unroll]] for (uint l = 0; l < LKV; l++) {
        uint i = t + l * WG;
        if (i < BK * DP / 4) {
            uint o = (i / (DP / 4)) * SD + (i % (DP / 4)) * 4;
            [[unroll]] for (uint e = 0; e < 4; e++) {
                sH[o + e] = r16(rk[l][e]);
            }
            if (withV) {
                [[unroll]] for (uint e = 0; e < 4; e++) {
                    sH[BK * SD + o + e] = r16(rv[l][e]);
                }
            }
        }
    }
}

void main() {
    const uint t = gl_LocalInvocationIndex;
    const uint sm = gl_SubgroupID * 16; // the subgroup's first row
    const uint q0 = (gl_WorkGroupID.x + p.tileBase) * BQ;
    const uint h = gl_WorkGroupID.y + p.headBase;
    const uint b = gl_WorkGroupID.z;
    const uint D = p.D;
    const bool hasMask = (p.flags & 1u) != 0;
    const bool causal = (p.flags & 2u) != 0;
    const bool vecKV = (p.flags & 8u) != 0;
    if (q0 >= p.Tq) {
        return; // whole workgroup
    }
    const uint qEnd = min(q0 + BQ, p.Tq);
    const uint qBase = p.offQ + b * p.batQ + h * D;
    const uint kBase = p.offK + b * p.batK + h * D;
    const uint vBase = p.offV + b * p.batV + h * D;
    const uint oBase = p.offO + b * p.batO + h * D;
    // Keys seen by the block's last row; query i sees j <= i + Tk - Tq.
    uint kEnd = p.Tk;
    if (causal) {
        kEnd = uint(clamp(int(qEnd) + int(p.Tk) - int(p.Tq), 0, int(p.Tk)));
    }
    const int shift = int(p.Tk) - int(p.Tq);
    const uint part = t % TPR;

    for (uint i = t; i < BQ * DP; i += WG) {
        uint r = i / DP, d = i % DP;
        float v = q0 + r < p.Tq && d < D ? LDQ(qBase + (q0 + r) * p.tokQ + d) : 0.0;
        sH[r * SD + d] = r16(v);
    }
    barrier();
    CM16 qf[NI][ND];
    [[unroll]] for (uint i = 0; i < NI; i++) {
        [[unroll]] for (uint j = 0; j < ND; j++) {
            if (FRAG * j < DP) {
                coopMatLoadNV(qf[i][j], sH, (sm + FRAG * i) * SD + FRAG * j, SD, false);
            }
        }
    }
    CM32 oacc[NI][ND];
    [[unroll]] for (uint i = 0; i < NI; i++) {
        [[unroll]] for (uint j = 0; j < ND; j++) {
            oacc[i][j] = CM32(0.0);
        }
    }
    float mrow[4] = float[4](NEG_INF, NEG_INF, NEG_INF, NEG_INF); // row maxima (pass 1: this invocation's share)
    float msafe[4] = float[4](0.0, 0.0, 0.0, 0.0); // the shift of pass 2: m, or 0 for an empty row
    float lrow[4] = float[4](0.0, 0.0, 0.0, 0.0);  // this invocation's share of the row sums

    for (uint pass = 0; pass < 2; pass++) {
        if (vecKV && kEnd > 0) {
            fetchKV(t, 0, min(BK, kEnd), kBase, vBase, pass == 1);
        }
        for (uint k0 = 0; k0 < kEnd; k0 += BK) {
            const uint nk = min(BK, kEnd - k0);
            barrier(); // the previous tile (and Q's loads) are consumed
            if (vecKV) {
                storeKV(t, pass == 1);
                if (k0 + BK < kEnd) {
                    fetchKV(t, k0 + BK, min(BK, kEnd - k0 - BK), kBase, vBase, pass == 1);
                }
            } else {
                for (uint i = t; i < BK * DP; i += WG) {
                    uint c = i / DP, d = i % DP;
                    bool ok = c < nk && d < D;
                    sH[c * SD + d] = r16(ok ? LDK(kBase + (k0 + c) * p.tokK + d) : 0.0);
                    if (pass == 1) {
                        sH[(BK + c) * SD + d] = r16(ok ? LDV(vBase + (k0 + c) * p.tokV + d) : 0.0);
                    }
                }
            }
            for (uint c = t; c < BK; c += WG) {
                sMk[c] = c < nk ? (hasMask ? M_[p.offM + b * p.Tk + k0 + c] : 0.0) : NEG_INF;
            }
            barrier();

            CM32 sacc[NI][NK];
            [[unroll]] for (uint i = 0; i < NI; i++) {
                [[unroll]] for (uint j = 0; j < NK; j++) {
                    sacc[i][j] = CM32(0.0);
                }
            }
            [[unroll]] for (uint kd = 0; kd < ND; kd++) {
                if (FRAG * kd < DP) {
                    CM16 kf[NK];
                    [[unroll]] for (uint j = 0; j < NK; j++) {
                        coopMatLoadNV(kf[j], sH, (FRAG * j) * SD + FRAG * kd, SD, true);
                    }
                    [[unroll]] for (uint i = 0; i < NI; i++) {
                        [[unroll]] for (uint j = 0; j < NK; j++) {
                            sacc[i][j] = coopMatMulAddNV(qf[i][kd], kf[j], sacc[i][j]);
                        }
                    }
                }
            }
            [[unroll]] for (uint i = 0; i < NI; i++) {
                [[unroll]] for (uint j = 0; j < NK; j++) {
                    coopMatStoreNV(sacc[i][j], sF, (sm + FRAG * i) * SS + FRAG * j, SS, false);
                }
            }
            barrier();

            [[unroll]] for (uint ri = 0; ri < 4; ri++) {
                if (ri < RPT) {
                    const uint r = t / TPR + ri * RSTEP;
                    const int last = int(q0 + r) + shift; // last key the row sees (causal)
                    for (uint c = part; c < BK; c += TPR) {
                        float z = fma(sF[r * SS + c], p.scale, sMk[c]);
                        if (causal && int(k0 + c) > last) {
                            z = NEG_INF;
                        }
                        if (pass == 0) {
                            mrow[ri] = max(mrow[ri], z);
                        } else {
                            float pj = exp2((z - msafe[ri]) * LOG2E);
                            lrow[ri] += pj;
                            sP[r * SPK + c] = r16(pj);
                        }
                    }
                }
            }

            if (pass == 1) {
                barrier(); // sP is complete
                [[unroll]] for (uint kk = 0; kk < NK; kk++) {
                    CM16 pf[NI];
                    [[unroll]] for (uint i = 0; i < NI; i++) {
                        coopMatLoadNV(pf[i], sP, (sm + FRAG * i) * SPK + FRAG * kk, SPK, false);
                    }
                    [[unroll]] for (uint j = 0; j < ND; j++) {
                        if (FRAG * j < DP) {
                            CM16 vf;
                            coopMatLoadNV(vf, sH, (BK + FRAG * kk) * SD + FRAG * j, SD, false);
                            [[unroll]] for (uint i = 0; i < NI; i++) {
                                oacc[i][j] = coopMatMulAddNV(pf[i], vf, oacc[i][j]);
                            }
                        }
                    }
                }
            }
        }

        if (pass == 0) {
            // Combine the row maxima of the TPR invocations of each row
            // (sF's last scores are read: barrier first).
            if (TPR > 1) {
                barrier();
                [[unroll]] for (uint ri = 0; ri < 4; ri++) {
                    if (ri < RPT) {
                        sF[(t / TPR + ri * RSTEP) * TPR + part] = mrow[ri];
                    }
                }
                barrier();
                [[unroll]] for (uint ri = 0; ri < 4; ri++) {
                    if (ri < RPT) {
                        const uint r = t / TPR + ri * RSTEP;
                        float m = NEG_INF;
                        for (uint e = 0; e < TPR; e++) {
                            m = max(m, sF[r * TPR + e]);
                        }
                        mrow[ri] = m;
                    }
                }
            }
            [[unroll]] for (uint ri = 0; ri < 4; ri++) {
                msafe[ri] = mrow[ri] == NEG_INF ? 0.0 : mrow[ri];
            }
        }
    }

    // Row sums (the same order in every invocation of a row), 1/l and LSE.
    // sF's scores were last read before the barrier ahead of the last P V;
    // the first barrier is for the row maxima's reads when no tile ran.
    if (TPR > 1) {
        barrier();
        [[unroll]] for (uint ri = 0; ri < 4; ri++) {
            if (ri < RPT) {
                sF[(t / TPR + ri * RSTEP) * TPR + part] = lrow[ri];
            }
        }
        barrier();
        [[unroll]] for (uint ri = 0; ri < 4; ri++) {
            if (ri < RPT) {
                const uint r = t / TPR + ri * RSTEP;
                float l = 0.0;
                for (uint e = 0; e < TPR; e++) {
                    l += sF[r * TPR + e];
                }
                lrow[ri] = l;
            }
        }
        barrier(); // before sF takes the output tile
    }
    const bool wantLSE = (p.flags & 4u) != 0;
    [[unroll]] for (uint ri = 0; ri < 4; ri++) {
        if (ri < RPT && part == 0) {
            const uint r = t / TPR + ri * RSTEP;
            const float l = lrow[ri];
            sInv[r] = l > 0.0 ? 1.0 / l : 0.0;
            if (wantLSE && q0 + r < p.Tq) {
                L_[p.offL + (b * p.H + h) * p.Tq + q0 + r] = l > 0.0 ? mrow[ri] + log(l) : POS_INF;
            }
        }
    }
    [[unroll]] for (uint i = 0; i < NI; i++) {
        [[unroll]] for (uint j = 0; j < ND; j++) {
            if (FRAG * j < DP) {
                coopMatStoreNV(oacc[i][j], sF, (sm + FRAG * i) * SO + FRAG * j, SO, false);
            }
        }
    }
    barrier();
    for (uint i = t; i < BQ * DP; i += WG) {
        uint r = i / DP, d = i % DP;
        if (q0 + r < p.Tq && d < D) {
            float v = sF[r * SO + d] * sInv[r];
            if (O16) {
                Oh_[oBase + (q0 + r) * p.tokO + d] = r16(v);
            } else {
                O_[oBase + (q0 + r) * p.tokO + d] = v;
            }
        }
    }
}
