// gpu.Gemm for CPU Vulkan drivers (lavapipe): the same contract as
// gemm.comp, laid out for an implementation that runs a subgroup as one SIMD
// vector and turns every lane-varying memory access into a loop over the
// lanes, and every cross-lane operation (shared memory, subgroup broadcast)
// into something as slow or slower. So this kernel has no shared memory, no
// barriers and no subgroup operations, and makes every load feed as many
// FMAs as it can: each invocation computes a TM x TN block of C on its own,
// fetching per four steps of K one vec4 of A per row (the same addresses in
// every lane of a workgroup, which share their rows) and one vec4 of B per
// column (B[k..k+3][col] regrouped in registers). The cost per four K steps
// is about TM + TN lane-loops against 4*TM*TN FMAs. With F16
// (gpu.Gemm.F16) A and an f32 B are rounded to f16 as they are loaded
// (gemm_b.glsl); the _h build takes A, B and C in 16 bits (gemm_ac.glsl).
//
// Workgroup (x, y, z) computes rows m0 = y*TM .. +TM-1 of batch z, and its
// invocation i columns n0 = (x*NT + i)*TN .. +TN-1.
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 8;       // invocations per workgroup
layout(constant_id = 1) const uint TM = 32;      // rows per invocation, a multiple of 4
layout(constant_id = 2) const uint TN = 8;       // columns per invocation, a multiple of 4
layout(constant_id = 3) const uint TRANS_A = 0;  // A stored (K, M)
layout(constant_id = 4) const uint TRANS_B = 0;  // B stored (N, K)
layout(constant_id = 5) const uint VEC_A = 0;    // vec4 loads of A (contiguous dim, lda, offsets % 4 == 0)
layout(constant_id = 6) const uint VEC_B = 0;    // vec4 loads of B
layout(constant_id = 7) const uint VEC_C = 0;    // vec4 access of C and Bias (ldc, offsets % 4 == 0)

layout(binding = 0) readonly buffer BufA { float A_[]; };
layout(binding = 0) readonly buffer BufA4 { vec4 A4_[]; };
#define GEMM_F16_ID 8
#define GEMM_BT_ID 9
#define GEMM_AT_ID 10
#define GEMM_CT_ID 11
#include "gemm_b.glsl"
layout(binding = 2) buffer BufC { float C_[]; };
layout(binding = 2) buffer BufC4 { vec4 C4_[]; };
#define GEMM_C4
#include "gemm_ac.glsl"
layout(binding = 3) readonly buffer BufBias { float Bias_[]; };
layout(binding = 3) readonly buffer BufBias4 { vec4 Bias4_[]; };

#include "gemm_push.glsl"

const uint TN4 = TN / 4;

vec4 acc[TM * TN4];
vec4 bq[4 * TN4]; // the invocation's B values for the current k..k+3: bq[j*TN4 + c] = B[k+j][cols 4c..4c+3]
uint aBase, bBase, m0, n0;

// A[row][k..k+3] (A not transposed); entries at k >= K are 0 when chk.
vec4 loadArow(uint row, uint k, bool chk) {
    uint i = aBase + row * p.lda + k;
    if (VEC_A != 0 && !chk) {
        return opF16(LDA4(i >> 2));
    }
    vec4 v;
    [[unroll]] for (uint j = 0; j < 4; j++) {
        v[j] = (!chk || k + j < p.K) ? LDA(i + j) : 0.0;
    }
    return opF16(v);
}

// A[k+j][row] for j < 4 (A transposed, scalar loads).
vec4 loadAcol(uint row, uint k, bool chk) {
    vec4 v;
    [[unroll]] for (uint j = 0; j < 4; j++) {
        v[j] = (!chk || k + j < p.K) ? LDA(aBase + (k + j) * p.lda + row) : 0.0;
    }
    return opF16(v);
}

// Fills bq for k..k+3.
void loadB(uint k, bool chk) {
    uint c0 = n0;
    if (TRANS_B == 0) {
        [[unroll]] for (uint j = 0; j < 4; j++) {
            bool ok = !chk || k + j < p.K;
            uint rowb = bBase + (k + j) * p.ldb;
            [[unroll]] for (uint c = 0; c < TN4; c++) {
                if (VEC_B != 0) {
                    uint col = min(c0 + 4 * c, p.N - 4);
                    bq[j * TN4 + c] = ok ? LDB4((rowb + col) >> 2) : vec4(0.0);
                } else {
                    vec4 v;
                    [[unroll]] for (uint e = 0; e < 4; e++) {
                        v[e] = ok ? LDB(rowb + min(c0 + 4 * c + e, p.N - 1)) : 0.0;
                    }
                    bq[j * TN4 + c] = v;
                }
            }
        }
    } else {
        // B[n][k..k+3] per column, transposed into bq in registers.
        [[unroll]] for (uint c = 0; c < TN4; c++) {
            vec4 t[4];
            [[unroll]] for (uint e = 0; e < 4; e++) {
                uint i = bBase + min(c0 + 4 * c + e, p.N - 1) * p.ldb + k;
                if (VEC_B != 0 && !chk) {
                    t[e] = LDB4(i >> 2);
                } else {
                    [[unroll]] for (uint j = 0; j < 4; j++) {
                        t[e][j] = (!chk || k + j < p.K) ? LDB(i + j) : 0.0;
                    }
                }
            }
            [[unroll]] for (uint j = 0; j < 4; j++) {
                bq[j * TN4 + c] = vec4(t[0][j], t[1][j], t[2][j], t[3][j]);
            }
        }
    }
}

// acc[row i] += a[j] * bq[j] over the four k.
void fmaRow(uint i, vec4 a) {
    [[unroll]] for (uint c = 0; c < TN4; c++) {
        acc[i * TN4 + c] = fma(vec4(a.w), bq[3 * TN4 + c],
                           fma(vec4(a.z), bq[2 * TN4 + c],
                           fma(vec4(a.y), bq[TN4 + c],
                           fma(vec4(a.x), bq[c], acc[i * TN4 + c]))));
    }
}

void quad(uint k, bool chk) {
    loadB(k, chk);
    if (TRANS_A != 0 && VEC_A != 0) {
        // A[k+j][m..m+3]: one vec4 per 4 rows and k step.
        [[unroll]] for (uint h = 0; h < TM / 4; h++) {
            uint row = min(m0 + 4 * h, p.M - 4);
            vec4 at[4];
            [[unroll]] for (uint j = 0; j < 4; j++) {
                at[j] = (!chk || k + j < p.K) ? opF16(LDA4((aBase + (k + j) * p.lda + row) >> 2)) : vec4(0.0);
            }
            [[unroll]] for (uint c = 0; c < 4; c++) {
                fmaRow(4 * h + c, vec4(at[0][c], at[1][c], at[2][c], at[3][c]));
            }
        }
    } else {
        [[unroll]] for (uint i = 0; i < TM; i++) {
            uint row = min(m0 + i, p.M - 1);
            fmaRow(i, TRANS_A == 0 ? loadArow(row, k, chk) : loadAcol(row, k, chk));
        }
    }
}

#include "gemm_epi.glsl"

void main() {
    n0 = (gl_WorkGroupID.x * NT + gl_LocalInvocationID.x) * TN;
    m0 = gl_WorkGroupID.y * TM;
    uint batch = gl_WorkGroupID.z;
    aBase = p.offA + batch * p.strideA;
    bBase = p.offB + batch * p.strideB;
    uint cBase = p.offC + batch * p.strideC;

    [[unroll]] for (uint i = 0; i < TM * TN4; i++) {
        acc[i] = vec4(0.0);
    }
    uint k4 = p.K & ~3u;
    for (uint k = 0; k < k4; k += 4) {
        quad(k, false);
    }
    if (k4 < p.K) {
        quad(k4, true);
    }

    // Epilogue as loops over a copy of acc (acc itself is only ever indexed
    // with constants, so it stays in registers above).
    vec4 accT[TM * TN4];
    [[unroll]] for (uint i = 0; i < TM * TN4; i++) {
        accT[i] = acc[i];
    }
    bool hasBias = (p.flags & 1u) != 0;
    uint act = (p.flags >> 1) & 3u;
    [[dont_unroll]] for (uint i = 0; i < TM; i++) {
        uint gm = m0 + i;
        if (gm >= p.M) {
            break;
        }
        [[dont_unroll]] for (uint c = 0; c < TN4; c++) {
            uint gn = n0 + 4 * c;
            uint ci = cBase + gm * p.ldc + gn;
            vec4 a = accT[i * TN4 + c];
            if (VEC_C != 0 && gn + 4 <= p.N) {
                vec4 v = p.alpha * a;
                if (hasBias) {
                    v += Bias4_[(p.offBias + gn) >> 2];
                }
                v = vec4(apply_act(act, v.x), apply_act(act, v.y), apply_act(act, v.z), apply_act(act, v.w));
                if (p.beta != 0.0) {
                    v = fma(vec4(p.beta), LDC4(ci >> 2), v);
                }
                STC4(ci >> 2, v);
            } else {
                [[dont_unroll]] for (uint e = 0; e < 4; e++) {
                    if (gn + e < p.N) {
                        STC(ci + e, epi(a[e], gn + e, ci + e, hasBias, act));
                    }
                }
            }
        }
    }
}
