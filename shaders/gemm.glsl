// Tiled SGEMM for gpu.Gemm:
//   C[b] = Beta*C[b] + Act(Alpha * op(A[b]) @ op(B[b]) + Bias)
//
// A workgroup computes a BM x BN block of C; each invocation a TM x TN
// register tile. K advances in steps of BK through shared memory, where both
// operands are stored k-major (As[k][m], Bs[k][n]) so that the inner product
// reads vec4s along m and n. The next K step is fetched into registers while
// the current one is multiplied (and, with DBUF, stored into a second shared
// buffer, so one barrier per step suffices).
//
// Output mapping of an invocation (tx, ty), tx < BN/TN, ty < BM/TM:
//   columns  n0 + j*4*(BN/TN) + tx*4 + c     (j < TN/4, c < 4)
//   rows     m0 + i*4*(BM/TM) + ty*4 + r     (i < TM/4, r < 4)
// so that the vec4 reads of a warp from Bs are consecutive (no bank
// conflicts) and those from As are broadcasts. With F16 (gpu.Gemm.F16) A
// and an f32 B are rounded to f16 as they are fetched (gemm_b.glsl). CPU
// drivers use gemm_cpu.comp instead.
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;     // invocations: (BM/TM)*(BN/TN)
layout(constant_id = 1) const uint BM = 128;
layout(constant_id = 2) const uint BN = 128;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 8;       // multiple of 4
layout(constant_id = 5) const uint TN = 8;       // multiple of 4
layout(constant_id = 6) const uint TRANS_A = 0;  // A stored (K, M)
layout(constant_id = 7) const uint TRANS_B = 0;  // B stored (N, K)
layout(constant_id = 8) const uint VEC_A = 0;    // vec4 loads of A (contiguous dim, lda, offsets % 4 == 0)
layout(constant_id = 9) const uint VEC_B = 0;    // vec4 loads of B
layout(constant_id = 10) const uint DBUF = 0;    // two shared buffers

layout(binding = 0) readonly buffer BufA { float A_[]; };
layout(binding = 0) readonly buffer BufA4 { vec4 A4_[]; };
#define GEMM_F16_ID 11
#define GEMM_BT_ID 12
#define GEMM_AT_ID 13
#define GEMM_CT_ID 14
#include "gemm_b.glsl"
layout(binding = 2) buffer BufC { float C_[]; };
#include "gemm_ac.glsl"
layout(binding = 3) readonly buffer BufBias { float Bias_[]; };

#include "gemm_push.glsl"

const uint WN_T = BN / TN;        // invocations along n
const uint WM_T = BM / TM;        // invocations along m
const uint ASTR = BM / 4 + 1;     // vec4s per k-row of As (one vec4 of padding)
const uint BSTR = BN / 4 + 1;
const uint NBUF = DBUF + 1;

shared vec4 As[NBUF * BK * ASTR];
shared vec4 Bs[NBUF * BK * BSTR];

// Per-invocation staging of the next K step.
const uint CNT_A4 = BM * BK / 4;  // vec4s in an A tile
const uint CNT_B4 = BN * BK / 4;
const uint CNT_A1 = BM * BK;      // floats in an A tile
const uint CNT_B1 = BN * BK;
const uint LA4 = (CNT_A4 + NT - 1) / NT;
const uint LB4 = (CNT_B4 + NT - 1) / NT;
const uint LA1 = (CNT_A1 + NT - 1) / NT;
const uint LB1 = (CNT_B1 + NT - 1) / NT;
vec4 stA4[LA4];
vec4 stB4[LB4];
float stA1[LA1];
float stB1[LB1];

uint tid;
uint aBase, bBase;
uint m0, n0;

void fetchA(uint k0) {
    if (TRANS_A == 0) {
        // A[m][k] at aBase + m*lda + k: contiguous along k.
        if (VEC_A != 0) {
            [[unroll]] for (uint l = 0; l < LA4; l++) {
                uint idx = tid + l * NT;
                uint r = idx / (BK / 4), kq = idx % (BK / 4);
                uint gm = m0 + r, gk = k0 + kq * 4;
                vec4 v = vec4(0.0);
                if (idx < CNT_A4 && gm < p.M && gk < p.K) {
                    v = opF16(LDA4((aBase + gm * p.lda + gk) >> 2));
                }
                stA4[l] = v;
            }
        } else {
            [[unroll]] for (uint l = 0; l < LA1; l++) {
                uint idx = tid + l * NT;
                uint r = idx / BK, kk = idx % BK;
                uint gm = m0 + r, gk = k0 + kk;
                float v = 0.0;
                if (idx < CNT_A1 && gm < p.M && gk < p.K) {
                    v = opF16(LDA(aBase + gm * p.lda + gk));
                }
                stA1[l] = v;
            }
        }
    } else {
        // A stored (K, M): A[k][m] at aBase + k*lda + m: contiguous along m.
        if (VEC_A != 0) {
            [[unroll]] for (uint l = 0; l < LA4; l++) {
                uint idx = tid + l * NT;
                uint kk = idx / (BM / 4), rq = idx % (BM / 4);
                uint gm = m0 + rq * 4, gk = k0 + kk;
                vec4 v = vec4(0.0);
                if (idx < CNT_A4 && gm < p.M && gk < p.K) {
                    v = opF16(LDA4((aBase + gk * p.lda + gm) >> 2));
                }
                stA4[l] = v;
            }
        } else {
            [[unroll]] for (uint l = 0; l < LA1; l++) {
                uint idx = tid + l * NT;
                uint kk = idx / BM, r = idx % BM;
                uint gm = m0 + r, gk = k0 + kk;
                float v = 0.0;
                if (idx < CNT_A1 && gm < p.M && gk < p.K) {
                    v = opF16(LDA(aBase + gk * p.lda + gm));
                }
                stA1[l] = v;
            }
        }
    }
}

void storeA(uint buf) {
    uint base = buf * BK * ASTR;
    if (TRANS_A == 0) {
        if (VEC_A != 0) {
            [[unroll]] for (uint l = 0; l < LA4; l++) {
                uint idx = tid + l * NT;
                uint r = idx / (BK / 4), kq = idx % (BK / 4);
                if (idx < CNT_A4) {
                    [[unroll]] for (uint c = 0; c < 4; c++) {
                        As[base + (kq * 4 + c) * ASTR + r / 4][r % 4] = stA4[l][c];
                    }
                }
            }
        } else {
            [[unroll]] for (uint l = 0; l < LA1; l++) {
                uint idx = tid + l * NT;
                uint r = idx / BK, kk = idx % BK;
                if (idx < CNT_A1) {
                    As[base + kk * ASTR + r / 4][r % 4] = stA1[l];
                }
            }
        }
    } else {
        if (VEC_A != 0) {
            [[unroll]] for (uint l = 0; l < LA4; l++) {
                uint idx = tid + l * NT;
                uint kk = idx / (BM / 4), rq = idx % (BM / 4);
                if (idx < CNT_A4) {
                    As[base + kk * ASTR + rq] = stA4[l];
                }
            }
        } else {
            [[unroll]] for (uint l = 0; l < LA1; l++) {
                uint idx = tid + l * NT;
                uint kk = idx / BM, r = idx % BM;
                if (idx < CNT_A1) {
                    As[base + kk * ASTR + r / 4][r % 4] = stA1[l];
                }
            }
        }
    }
}

void fetchB(uint k0) {
    if (TRANS_B == 0) {
        // B[k][n] at bBase + k*ldb + n: contiguous along n.
        if (VEC_B != 0) {
            [[unroll]] for (uint l = 0; l < LB4; l++) {
                uint idx = tid + l * NT;
                uint kk = idx / (BN / 4), cq = idx % (BN / 4);
                uint gn = n0 + cq * 4, gk = k0 + kk;
                vec4 v = vec4(0.0);
                if (idx < CNT_B4 && gn < p.N && gk < p.K) {
                    v = LDB4((bBase + gk * p.ldb + gn) >> 2);
                }
                stB4[l] = v;
            }
        } else {
            [[unroll]] for (uint l = 0; l < LB1; l++) {
                uint idx = tid + l * NT;
                uint kk = idx / BN, cc = idx % BN;
                uint gn = n0 + cc, gk = k0 + kk;
                float v = 0.0;
                if (idx < CNT_B1 && gn < p.N && gk < p.K) {
                    v = LDB(bBase + gk * p.ldb + gn);
                }
                stB1[l] = v;
            }
        }
    } else {
        // B stored (N, K): B[n][k] at bBase + n*ldb + k: contiguous along k.
        if (VEC_B != 0) {
            [[unroll]] for (uint l = 0; l < LB4; l++) {
                uint idx = tid + l * NT;
                uint cc = idx / (BK / 4), kq = idx % (BK / 4);
                uint gn = n0 + cc, gk = k0 + kq * 4;
                vec4 v = vec4(0.0);
                if (idx < CNT_B4 && gn < p.N && gk < p.K) {
                    v = LDB4((bBase + gn * p.ldb + gk) >> 2);
                }
                stB4[l] = v;
            }
        } else {
            [[unroll]] for (uint l = 0; l < LB1; l++) {
                uint idx = tid + l * NT;
                uint cc = idx / BK, kk = idx % BK;
                uint gn = n0 + cc, gk = k0 + kk;
                float v = 0.0;
                if (idx < CNT_B1 && gn < p.N && gk < p.K) {
                    v = LDB(bBase + gn * p.ldb + gk);
                }
                stB1[l] = v;
            }
        }
    }
}

void storeB(uint buf) {
    uint base = buf * BK * BSTR;
    if (TRANS_B == 0) {
        if (VEC_B != 0) {
            [[unroll]] for (uint l = 0; l < LB4; l++) {
                uint idx = tid + l * NT;
                uint kk = idx / (BN / 4), cq = idx % (BN / 4);
                if (idx < CNT_B4) {
                    Bs[base + kk * BSTR + cq] = stB4[l];
                }
            }
        } else {
            [[unroll]] for (uint l = 0; l < LB1; l++) {
                uint idx = tid + l * NT;
                uint kk = idx / BN, cc = idx % BN;
                if (idx < CNT_B1) {
                    Bs[base + kk * BSTR + cc / 4][cc % 4] = stB1[l];
                }
            }
        }
    } else {
        if (VEC_B != 0) {
            [[unroll]] for (uint l = 0; l < LB4; l++) {
                uint idx = tid + l * NT;
                uint cc = idx / (BK / 4), kq = idx % (BK / 4);
                if (idx < CNT_B4) {
                    [[unroll]] for (uint c = 0; c < 4; c++) {
                        Bs[base + (kq * 4 + c) * BSTR + cc / 4][cc % 4] = stB4[l][c];
                    }
                }
            }
        } else {
            [[unroll]] for (uint l = 0; l < LB1; l++) {
                uint idx = tid + l * NT;
                uint cc = idx / BK, kk = idx % BK;
                if (idx < CNT_B1) {
                    Bs[base + kk * BSTR + cc / 4][cc % 4] = stB1[l];
                }
            }
        }
    }
}

const uint TN4 = TN / 4;
const uint TM4 = TM / 4;
vec4 acc[TM * TN4];

void computeStep(uint abase, uint bbase, uint kk, uint tx, uint ty) {
    vec4 bv[TN4];
    [[unroll]] for (uint j = 0; j < TN4; j++) {
        bv[j] = Bs[bbase + kk * BSTR + j * WN_T + tx];
    }
    [[unroll]] for (uint i = 0; i < TM4; i++) {
        vec4 av = As[abase + kk * ASTR + i * WM_T + ty];
        [[unroll]] for (uint r = 0; r < 4; r++) {
            [[unroll]] for (uint j = 0; j < TN4; j++) {
                acc[(i * 4 + r) * TN4 + j] = fma(vec4(av[r]), bv[j], acc[(i * 4 + r) * TN4 + j]);
            }
        }
    }
}

void compute(uint buf, uint tx, uint ty) {
    uint abase = buf * BK * ASTR;
    uint bbase = buf * BK * BSTR;
    for (uint kk = 0; kk < BK; kk++) {
        computeStep(abase, bbase, kk, tx, ty);
    }
}

// C = beta*C + act(alpha*acc + bias) for one element of the invocation's
// tile (i: row of the tile, j: vec4 column group, c: component).
#include "gemm_epi.glsl"

void storeOne(uint cBase, uint i, uint j, uint c, uint tx, uint ty, float a, bool hasBias, uint act) {
    uint gm = m0 + (i / 4) * 4 * WM_T + ty * 4 + (i % 4);
    uint gn = n0 + j * 4 * WN_T + tx * 4 + c;
    if (gm < p.M && gn < p.N) {
        uint ci = cBase + gm * p.ldc + gn;
        STC(ci, epi(a, gn, ci, hasBias, act));
    }
}

void main() {
    tid = gl_LocalInvocationID.x;
    uint tx = tid % WN_T;
    uint ty = tid / WN_T;
    n0 = gl_WorkGroupID.x * BN;
    m0 = gl_WorkGroupID.y * BM;
    uint batch = gl_WorkGroupID.z;
    aBase = p.offA + batch * p.strideA;
    bBase = p.offB + batch * p.strideB;
    uint cBase = p.offC + batch * p.strideC;

    [[unroll]] for (uint i = 0; i < TM * TN4; i++) {
        acc[i] = vec4(0.0);
    }

    uint nt = (p.K + BK - 1) / BK;
    fetchA(0);
    fetchB(0);
    storeA(0);
    storeB(0);
    barrier();
    for (uint s = 0; s < nt; s++) {
        uint cur = DBUF != 0 ? (s & 1) : 0;
        bool more = s + 1 < nt;
        if (more) {
            fetchA((s + 1) * BK);
            fetchB((s + 1) * BK);
        }
        compute(cur, tx, ty);
        if (more) {
            if (DBUF == 0) {
                barrier();
            }
            storeA(DBUF != 0 ? cur ^ 1 : 0);
            storeB(DBUF != 0 ? cur ^ 1 : 0);
        }
        barrier();
    }

    bool hasBias = (p.flags & 1u) != 0;
    uint act = (p.flags >> 1) & 3u;
    [[unroll]] for (uint i = 0; i < TM; i++) {
        [[unroll]] for (uint j = 0; j < TN4; j++) {
            [[unroll]] for (uint c = 0; c < 4; c++) {
                storeOne(cBase, i, j, c, tx, ty, acc[i * TN4 + j][c], hasBias, act);
            }
        }
    }
}
