// gpu.Gemm with few rows (decoding: one row per sequence and beam), B
// stored (N, K) as a linear layer's weight, A stored (M, K):
//   C[b] = Beta*C[b] + Act(Alpha * A[b] @ B[b]^T + Bias)
//
// The tiled kernel (gemm.glsl) gives such a product a few dozen
// workgroups of mostly empty rows: on an H100 a 1 x 768 x 768 product took
// 80 us there, for 2.4 MB of weights that the GPU reads in about 1 us.
// Here the work is split along N only: a team of TEAM invocations owns NCT
// columns and up to MR rows, each invocation walks K in strides (vec4
// loads along k where aligned), and the team sums its partial products in
// shared memory by a fixed tree, so results do not depend on timing. A
// workgroup is NT / TEAM teams side by side; rows beyond MR take further
// workgroups. F16 rounds A and an f32 B to f16 on load as in every
// gemm shader (gemm_b.glsl).
//
// With SEGS (gemm_rows_seg*.comp) the columns are up to three products of
// one A side by side (decoding's query, key and value projections): the
// columns [s*N, (s+1)*N) are product s, whose weight rows start at its own
// offset in the one B binding, its bias at its own offset in the one Bias
// binding, and whose results go to its own C binding (C, C1, C2), row
// stride and batch stride. Alpha, the activation and Beta 0 are common.
//
// With NORM (gemm_rows_ln*.comp, gpu.GemmNorm) the LayerNorm after the
// product runs in the same dispatch: each workgroup writes its part of C,
// then counts itself done (an atomic counter per block of MR rows); the
// last of a block to finish normalises its rows over the N columns (C +
// the LayerNorm's other operand), as layernorm.comp does, and sets the
// counter back to 0 for the next dispatch. Where the norm's outputs
// overlap A (a plan reuses a dead operand's memory) one counter counts
// every workgroup (nflags bit 2 clear) and the last normalises all M rows:
// only then has every block read its rows of A. The counter buffer is
// bound for writing, so the recorder puts a barrier between two such
// dispatches and they never share it. C is coherent: the last workgroup
// reads what the others wrote, not its own cache.
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 128;   // invocations per workgroup
layout(constant_id = 1) const uint TEAM = 32;  // invocations per column team (power of two)
layout(constant_id = 2) const uint NCT = 2;    // columns per team
layout(constant_id = 3) const uint MR = 8;     // rows per workgroup
layout(constant_id = 4) const uint VEC = 0;    // vec4 loads along k of A and B
#define GEMM_F16_ID 5
#define GEMM_BT_ID 6

layout(binding = 0) readonly buffer BufA { float A_[]; };
layout(binding = 0) readonly buffer BufA4 { vec4 A4_[]; };
#include "gemm_b.glsl"
#ifdef NORM
layout(binding = 2) coherent buffer BufC { float C_[]; };
#else
layout(binding = 2) buffer BufC { float C_[]; };
#endif
layout(binding = 3) readonly buffer BufBias { float Bias_[]; };
#ifdef SEGS
layout(binding = 4) writeonly buffer BufC1 { float C1_[]; };
layout(binding = 5) writeonly buffer BufC2 { float C2_[]; };
#define NCOLS (p.N * p.nseg)
#define BROW(c, n) bRow[c]
#else
#define NCOLS p.N
#define BROW(c, n) (bBase + (n) * p.ldb)
#endif
#ifdef NORM
layout(binding = 4) readonly buffer BufO { float O_[]; };    // the LayerNorm's other operand (X or R)
layout(binding = 5) readonly buffer BufG { float Gamma_[]; };
layout(binding = 6) readonly buffer BufBt { float Beta_[]; };
layout(binding = 7) writeonly buffer BufY { float Y_[]; };
layout(binding = 8) writeonly buffer BufS { float S_[]; };   // C + O, where asked
layout(binding = 9) buffer BufCnt { uint Cnt_[]; };          // finished workgroups (per row block)
#endif

#include "gemm_push.glsl"
#define LDC(i) C_[i]
#include "gemm_epi.glsl"

const uint TEAMS = NT / TEAM;
shared float red[NT * MR * NCT];

#ifdef SEGS
// storeSeg writes column gn (of all the products' columns) of row gm.
void storeSeg(uint gm, uint gn, uint batch, float a, bool hasBias, uint act) {
    const uint sg = gn / p.N, nl = gn - sg * p.N;
    float v = p.alpha * a;
    if (hasBias) {
        v += Bias_[(sg == 0 ? p.offBias : sg == 1 ? p.offBias1 : p.offBias2) + nl];
    }
    v = apply_act(act, v);
    if (sg == 0) {
        C_[p.offC + batch * p.strideC + gm * p.ldc + nl] = v;
    } else if (sg == 1) {
        C1_[p.offC1 + batch * p.strideC1 + gm * p.ldc1 + nl] = v;
    } else {
        C2_[p.offC2 + batch * p.strideC2 + gm * p.ldc2 + nl] = v;
    }
}
#endif

#ifdef NORM
shared uint lastOne;

// sumRows leaves in red[r * NT] the workgroup's sum of v[r], rows r < MR,
// by a fixed tree (the same bits on every run).
void sumRows(float v[MR], uint t) {
    barrier(); // earlier readers of red are done
    [[unroll]] for (uint r = 0; r < MR; r++) {
        red[r * NT + t] = v[r];
    }
    barrier();
    for (uint s = NT / 2; s > 0; s /= 2) {
        if (t < s) {
            [[unroll]] for (uint r = 0; r < MR; r++) {
                red[r * NT + t] += red[r * NT + t + s];
            }
        }
        barrier();
    }
}

// normRows normalises rows m0.. (up to MR, below M) of C + O over the N
// columns: the mean, then the biased variance around it, then the output,
// each pass reading the same fp32 sums.
void normRows(uint m0, uint t) {
    const bool hasO = (p.nflags & 1u) != 0, writeS = (p.nflags & 2u) != 0;
    float acc[MR];
    [[unroll]] for (uint r = 0; r < MR; r++) {
        acc[r] = 0.0;
        uint m = m0 + r;
        if (m < p.M) {
            for (uint c = t; c < p.N; c += NT) {
                float v = C_[p.offC + m * p.N + c] + (hasO ? O_[p.offO + m * p.N + c] : 0.0);
                acc[r] += v;
                if (writeS) {
                    S_[p.offS + m * p.N + c] = v;
                }
            }
        }
    }
    sumRows(acc, t);
    float mean[MR];
    [[unroll]] for (uint r = 0; r < MR; r++) {
        mean[r] = red[r * NT] / float(p.N);
        acc[r] = 0.0;
        uint m = m0 + r;
        if (m < p.M) {
            for (uint c = t; c < p.N; c += NT) {
                float d = C_[p.offC + m * p.N + c] + (hasO ? O_[p.offO + m * p.N + c] : 0.0) - mean[r];
                acc[r] = fma(d, d, acc[r]);
            }
        }
    }
    sumRows(acc, t);
    [[unroll]] for (uint r = 0; r < MR; r++) {
        float rstd = 1.0 / sqrt(red[r * NT] / float(p.N) + p.eps);
        uint m = m0 + r;
        if (m < p.M) {
            for (uint c = t; c < p.N; c += NT) {
                float y = (C_[p.offC + m * p.N + c] + (hasO ? O_[p.offO + m * p.N + c] : 0.0) - mean[r]) * rstd;
                Y_[p.offY + m * p.N + c] = fma(y, Gamma_[p.offG + c], Beta_[p.offBt + c]);
            }
        }
    }
}
#endif

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint team = t / TEAM, lane = t % TEAM;
    // Row blocks along x: the workgroups that read the same columns of B
    // run together, so B comes from memory once and from L2 for the rest.
    const uint n0 = (gl_WorkGroupID.y * TEAMS + team) * NCT;
    const uint m0 = gl_WorkGroupID.x * MR;
    const uint batch = gl_WorkGroupID.z;
    const uint aBase = p.offA + batch * p.strideA;
    const uint bBase = p.offB + batch * p.strideB;
    const uint cBase = p.offC + batch * p.strideC;

#ifdef SEGS
    // Each column's weight row (its product's B offset).
    uint bRow[NCT];
    [[unroll]] for (uint c = 0; c < NCT; c++) {
        const uint n = min(n0 + c, NCOLS - 1), sg = n / p.N;
        bRow[c] = (sg == 0 ? p.offB : sg == 1 ? p.offB1 : p.offB2) + batch * p.strideB + (n - sg * p.N) * p.ldb;
    }
#endif
    float acc[MR * NCT];
    [[unroll]] for (uint i = 0; i < MR * NCT; i++) {
        acc[i] = 0.0;
    }
    if (VEC != 0) {
        // A row m at (aBase + m*lda)/4 in vec4s, B row n at (bBase + n*ldb)/4.
        const uint K4 = p.K / 4;
        for (uint k4 = lane; k4 < K4; k4 += TEAM) {
            vec4 b[NCT];
            [[unroll]] for (uint c = 0; c < NCT; c++) {
                uint n = n0 + c;
                b[c] = n < NCOLS ? LDB4(BROW(c, n) / 4 + k4) : vec4(0.0);
            }
            [[unroll]] for (uint r = 0; r < MR; r++) {
                uint m = m0 + r;
                if (m < p.M) {
                    vec4 a = opF16(A4_[(aBase + m * p.lda) / 4 + k4]);
                    [[unroll]] for (uint c = 0; c < NCT; c++) {
                        acc[r * NCT + c] += dot(a, b[c]);
                    }
                }
            }
        }
    } else {
        for (uint k = lane; k < p.K; k += TEAM) {
            float b[NCT];
            [[unroll]] for (uint c = 0; c < NCT; c++) {
                uint n = n0 + c;
                b[c] = n < NCOLS ? LDB(BROW(c, n) + k) : 0.0;
            }
            [[unroll]] for (uint r = 0; r < MR; r++) {
                uint m = m0 + r;
                if (m < p.M) {
                    float a = opF16(A_[aBase + m * p.lda + k]);
                    [[unroll]] for (uint c = 0; c < NCT; c++) {
                        acc[r * NCT + c] = fma(a, b[c], acc[r * NCT + c]);
                    }
                }
            }
        }
    }

    // red[(team, i)][lane]: the team's partial sums of output i = r*NCT + c.
    [[unroll]] for (uint i = 0; i < MR * NCT; i++) {
        red[(team * MR * NCT + i) * TEAM + lane] = acc[i];
    }
    barrier();
    for (uint s = TEAM / 2; s > 0; s /= 2) {
        if (lane < s) {
            [[unroll]] for (uint i = 0; i < MR * NCT; i++) {
                uint j = (team * MR * NCT + i) * TEAM + lane;
                red[j] += red[j + s];
            }
        }
        barrier();
    }

    const bool hasBias = (p.flags & 1u) != 0;
    const uint act = (p.flags >> 1) & 3u;
    for (uint i = lane; i < MR * NCT; i += TEAM) {
        uint gm = m0 + i / NCT, gn = n0 + i % NCT;
        if (gm >= p.M || gn >= NCOLS) {
            continue;
        }
#ifdef SEGS
        storeSeg(gm, gn, batch, red[(team * MR * NCT + i) * TEAM], hasBias, act);
#else
        uint ci = cBase + gm * p.ldc + gn;
        C_[ci] = epi(red[(team * MR * NCT + i) * TEAM], gn, ci, hasBias, act);
#endif
    }
#ifdef NORM
    memoryBarrierBuffer(); // this invocation's C before the count
    barrier();
    const bool perBlock = (p.nflags & 4u) != 0;
    const uint ci = p.offCnt + (perBlock ? gl_WorkGroupID.x : 0u);
    if (t == 0) {
        const uint groups = perBlock ? gl_NumWorkGroups.y : gl_NumWorkGroups.x * gl_NumWorkGroups.y;
        lastOne = atomicAdd(Cnt_[ci], 1u) == groups - 1u ? 1u : 0u;
    }
    barrier();
    if (lastOne == 0u) {
        return;
    }
    memoryBarrierBuffer();
    if (perBlock) {
        normRows(m0, t);
    } else {
        for (uint r0 = 0; r0 < p.M; r0 += MR) {
            normRows(r0, t);
        }
    }
    if (t == 0) {
        Cnt_[ci] = 0u;
    }
#endif
}
