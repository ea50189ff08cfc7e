// gpu.Attention for decoding: a few queries (Tq <= RQ) against many keys,
// where one workgroup per (query tile, head, batch) would leave most of a GPU
// idle. The keys are split into chunks of NT and the work runs in two
// passes (MODE):
//
//   0: one workgroup per (chunk, head, batch); invocation t scores key
//      chunk*NT + t against every query row, and the workgroup writes per row
//      the chunk's maximum score m, the sum l of exp(s - m) and the
//      unnormalised output o = sum exp(s - m) V[key] to the partial buffer P,
//      (D + 2) floats per (batch, head, row, chunk): m, l, o[0..D-1].
//   1: one workgroup per (row, head, batch) combines the chunks:
//      M = max m_c, L = sum e^(m_c - M) l_c, O = sum e^(m_c - M) o_c / L, and
//      LSE = M + log L.
//   2: all keys in one chunk (Tk <= NT: a decoder's self-attention over
//      the tokens so far): pass 0 that writes O = o / l and LSE = m + log l
//      itself, which is what pass 1 makes of a single chunk (whose weight
//      e^(m - M) is e^0), in one dispatch instead of two.
//   3: (F16 only) pass 0's scores, writing only each chunk's maximum, to
//      the maxima after the partial records.
//   4: (attention_split_one.comp, ONEPASS) pass 0, then the last workgroup
//      of each (batch, head) to finish (an atomic counter per (batch,
//      head), which it sets back to 0) combines the chunks of every row as
//      pass 1 does: one dispatch instead of two. Only the workgroups of one
//      (batch, head) read its query rows and keys, so the combine runs
//      after every read of what it could overwrite; the records are
//      coherent, read by a workgroup that did not write most of them.
//
// F16 (gpu.Attention.F16, fp16 decoding): Q, K and V are read rounded to
// f16 and the probabilities are rounded to f16 for the product with V
// after the shift by the row's final maximum, as the definition asks; the
// sums stay fp32. So with several chunks pass 3 runs first and pass 0
// shifts by the maximum over all chunks' maxima (not its own), and pass 1's
// merge weights are then all e^0 = 1. A single chunk (MODE 2) has the row's
// maximum itself.
//
// With PROJ (attention_split_one_q.comp, gpu.QueryAttention) binding 0
// is not Q but the hidden states X (B, Tq, C) of the rows, and each
// workgroup computes its head's queries itself: q = X W_h^T + bias_h with
// W (H*D, C) in f32, f16 or bf16 (WT; read as 32-bit words, so the module
// needs no 16-bit storage) and the projection's own F16 rounding of X and
// an f32 W (PF16). The rows
// of X go to shared memory once (rounded there), then teams of PT
// invocations each own a query column and walk C in vec4 steps (a team's
// loads are one contiguous span of W's row) and sum by a fixed tree. Every
// chunk of a head computes the same queries the same way: a decoder's
// cross-query projection without its own dispatch.
//
// Scores, masks, causality and empty rows (zeros, LSE +Inf) follow
// attention.comp.
#extension GL_EXT_control_flow_attributes : require
#include "gemm_round.glsl"
#ifdef PROJ
#include "half.glsl"
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 64;   // invocations; keys per chunk in pass 0
layout(constant_id = 1) const uint RQ = 4;    // most query rows
layout(constant_id = 2) const uint MODE = 0;
layout(constant_id = 3) const uint VEC = 0;   // vec4 loads of Q and K (D, strides, offsets % 4 == 0)
layout(constant_id = 4) const uint F16 = 0;   // gpu.Attention.F16
#ifdef PROJ
layout(constant_id = 5) const uint WT = DT_F32; // W's type
layout(constant_id = 6) const uint PF16 = 0;    // the projection's gpu.Gemm.F16
const uint PT = 8;       // invocations per query column (a team)
const uint CMAX = 1024;  // most hidden units C
#endif

const uint DMAX = 128; // gpu.MaxAttentionHeadDim
#define NEG_INF uintBitsToFloat(0xff800000u)
#define POS_INF uintBitsToFloat(0x7f800000u)
const float LOG2E = 1.44269504088896341f;

layout(binding = 0) readonly buffer BufQ { float Q_[]; };
layout(binding = 0) readonly buffer BufQ4 { vec4 Q4_[]; };
layout(binding = 1) readonly buffer BufK { float K_[]; };
layout(binding = 1) readonly buffer BufK4 { vec4 K4_[]; };
layout(binding = 2) readonly buffer BufV { float V_[]; };
layout(binding = 3) writeonly buffer BufO { float O_[]; };
layout(binding = 4) readonly buffer BufMask { float M_[]; };
layout(binding = 5) writeonly buffer BufLSE { float L_[]; };
#ifdef ONEPASS
layout(binding = 6) coherent buffer BufP { float P_[]; };
layout(binding = 7) buffer BufCnt { uint Cnt_[]; }; // finished chunks per (batch, head)
#define RECORDS (MODE == 0 || MODE == 4)
#else
layout(binding = 6) buffer BufP { float P_[]; };
#define RECORDS (MODE == 0)
#endif
#ifdef PROJ
layout(binding = 8) readonly buffer BufW { uint W_[]; };   // f32 bits, or two 16-bit codes
layout(binding = 8) readonly buffer BufW2 { uvec2 W2_[]; };
layout(binding = 8) readonly buffer BufW4 { uvec4 W4_[]; };
layout(binding = 9) readonly buffer BufBias { float Bias_[]; };
#endif

layout(push_constant) uniform Push {
    uint Tq, Tk, H, D;
    uint offQ, offK, offV, offO, offM, offL, offP;
    uint tokQ, tokK, tokV, tokO;
    uint batQ, batK, batV, batO;
    float scale;
    uint flags;    // 1: mask, 2: causal, 4: LSE
    uint chunks;   // S, the number of key chunks
    uint headBase; // head of workgroup y = 0
    uint xBase;    // chunk (pass 0) or row (pass 1) of workgroup x = 0
#ifdef ONEPASS
    uint offCnt;
#endif
#ifdef PROJ
    uint offW, offBias; // in W's and Bias's elements
    uint C, ldw;        // hidden units, W's row stride (both % 4 == 0, as offW)
    uint pflags;        // 1: bias
#endif
} p;

shared vec4 sQ[RQ * DMAX / 4]; // query rows
shared float sS[RQ * NT];      // scores, then exp(s - m)
shared float sMax[RQ];
shared float sSum[RQ]; // MODE 2: l per row
#ifdef PROJ
shared vec4 sX[RQ * CMAX / 4]; // the rows of X, rounded under F16
#endif

// First float of the partial record of (batch b, head h, row r, chunk c).
uint part(uint b, uint h, uint r, uint c) {
    return p.offP + (((b * p.H + h) * p.Tq + r) * p.chunks + c) * (p.D + 2);
}

// The chunk maximum of pass 3 for (b, h, r, c), after the records of the
// dispatch's gl_NumWorkGroups.z batch entries.
uint partMax(uint b, uint h, uint r, uint c) {
    return p.offP + gl_NumWorkGroups.z * p.H * p.Tq * p.chunks * (p.D + 2) + ((b * p.H + h) * p.Tq + r) * p.chunks + c;
}

// f16 rounding of the operands under F16 (gemm_round.glsl's, as the
// tiled attention kernel rounds).
float opF16(float x) { return F16 != 0 ? rnd16(x) : x; }
vec4 opF16(vec4 x) { return F16 != 0 ? rnd16(x) : x; }

#ifdef PROJ
// The projection's rounding of X and an f32 W under its own F16 (PF16:
// fp16 decoding projects in half precision, its few-query attention
// stays fp32).
vec4 projF16(vec4 x) { return PF16 != 0 ? rnd16(x) : x; }

// w4 is W's elements 4i .. 4i+3, as fp32 values (rounded under PF16 where
// W is f32; a 16-bit W holds its values already).
vec4 w4(uint i) {
    if (WT == DT_F32) {
        return projF16(uintBitsToFloat(W4_[i]));
    }
    uvec2 u = W2_[i];
    return vec4(widen16(WT, u.x & 0xffffu), widen16(WT, u.x >> 16), widen16(WT, u.y & 0xffffu), widen16(WT, u.y >> 16));
}

// project leaves in sQ the queries of head h of batch b's rows: X's rows
// into sX, then per round NT / PT columns, each summed by its team in sS
// (free until the scores).
void project(uint t, uint h, uint b) {
    const uint C4 = p.C / 4, D = p.D;
    const uint xBase = (p.offQ + b * p.batQ) / 4;
    // Zeros past D in the rows' last vec4, as the loads of Q leave them
    // (the scores multiply them by K's zeros: stale memory could be NaN).
    for (uint i = t; i < RQ * DMAX / 4; i += NT) {
        sQ[i] = vec4(0.0);
    }
    for (uint i = t; i < p.Tq * C4; i += NT) {
        uint r = i / C4;
        sX[r * (CMAX / 4) + i % C4] = projF16(Q4_[xBase + r * (p.tokQ / 4) + i % C4]);
    }
    barrier();
    const uint team = t / PT, lane = t % PT;
    const bool hasBias = (p.pflags & 1u) != 0;
    for (uint d0 = 0; d0 < D; d0 += NT / PT) {
        const uint d = d0 + team;
        float acc[RQ];
        [[unroll]] for (uint r = 0; r < RQ; r++) {
            acc[r] = 0.0;
        }
        if (d < D) {
            const uint wRow = p.offW + (h * D + d) * p.ldw; // elements, % 4 == 0
            for (uint c4 = lane; c4 < C4; c4 += PT) {
                vec4 w = w4(wRow / 4 + c4);
                [[unroll]] for (uint r = 0; r < RQ; r++) {
                    if (r < p.Tq) {
                        acc[r] += dot(sX[r * (CMAX / 4) + c4], w);
                    }
                }
            }
        }
        [[unroll]] for (uint r = 0; r < RQ; r++) {
            sS[r * NT + t] = acc[r];
        }
        barrier();
        for (uint s = PT / 2; s > 0; s /= 2) {
            if (lane < s) {
                [[unroll]] for (uint r = 0; r < RQ; r++) {
                    sS[r * NT + t] += sS[r * NT + t + s];
                }
            }
            barrier();
        }
        if (lane == 0 && d < D) {
            const float bias = hasBias ? Bias_[p.offBias + h * D + d] : 0.0;
            for (uint r = 0; r < p.Tq; r++) {
                // sQ holds vec4s of four columns: column d of row r.
                sQ[r * (DMAX / 4) + d / 4][d % 4] = opF16(sS[r * NT + t] + bias);
            }
        }
        barrier();
    }
}
#endif

void chunkPass(uint t, uint c, uint h, uint b) {
    const uint D = p.D, D4 = (D + 3) / 4;
    const uint qBase = p.offQ + b * p.batQ + h * D;
    const uint kBase = p.offK + b * p.batK + h * D;
    const uint vBase = p.offV + b * p.batV + h * D;
#ifdef PROJ
    project(t, h, b);
#else
    for (uint i = t; i < p.Tq * D4; i += NT) {
        uint r = i / D4, d = 4 * (i % D4);
        vec4 v = vec4(0.0);
        if (VEC != 0) {
            v = Q4_[(qBase + r * p.tokQ + d) >> 2];
        } else {
            [[unroll]] for (uint e = 0; e < 4; e++) {
                if (d + e < D) {
                    v[e] = Q_[qBase + r * p.tokQ + d + e];
                }
            }
        }
        sQ[r * (DMAX / 4) + d / 4] = opF16(v);
    }
#endif
    barrier();

    const uint k0 = c * NT;
    const uint nk = min(NT, p.Tk - k0);
    const uint key = k0 + t;
    const bool hasMask = (p.flags & 1u) != 0;
    const bool causal = (p.flags & 2u) != 0;
    float mk = key < p.Tk ? (hasMask ? M_[p.offM + b * p.Tk + key] : 0.0) : NEG_INF;
    for (uint r = 0; r < p.Tq; r++) {
        float z = NEG_INF;
        // Query r sees keys j <= r + Tk - Tq under causality.
        if (t < nk && (!causal || int(key) <= int(r) + int(p.Tk) - int(p.Tq))) {
            vec4 acc = vec4(0.0);
            uint kb = kBase + key * p.tokK;
            for (uint d4 = 0; d4 < D4; d4++) {
                vec4 kv;
                if (VEC != 0) {
                    kv = K4_[(kb >> 2) + d4];
                } else {
                    kv = vec4(0.0);
                    [[unroll]] for (uint e = 0; e < 4; e++) {
                        if (4 * d4 + e < D) {
                            kv[e] = K_[kb + 4 * d4 + e];
                        }
                    }
                }
                acc = fma(sQ[r * (DMAX / 4) + d4], opF16(kv), acc);
            }
            z = fma((acc.x + acc.y) + (acc.z + acc.w), p.scale, mk);
        }
        sS[r * NT + t] = z;
    }
    barrier();
    if (t < p.Tq) {
        float m = NEG_INF;
        for (uint j = 0; j < nk; j++) {
            m = max(m, sS[t * NT + j]);
        }
        if (MODE == 3) {
            P_[partMax(b, h, t, c)] = m;
        } else if (F16 != 0 && RECORDS) {
            // The row's maximum over every chunk (pass 3's).
            m = NEG_INF;
            for (uint cc = 0; cc < p.chunks; cc++) {
                m = max(m, P_[partMax(b, h, t, cc)]);
            }
        }
        sMax[t] = m;
    }
    if (MODE == 3) {
        return;
    }
    barrier();
    for (uint r = 0; r < p.Tq; r++) {
        float m = sMax[r];
        float z = sS[r * NT + t];
        sS[r * NT + t] = (t < nk && m != NEG_INF && z != NEG_INF) ? exp2((z - m) * LOG2E) : 0.0;
    }
    barrier();
    if (MODE == 2) {
        // Every invocation divides by its row's l: summed once, shared.
        if (t < p.Tq) {
            float l = 0.0;
            for (uint j = 0; j < nk; j++) {
                l += sS[t * NT + j];
            }
            sSum[t] = l;
        }
        barrier();
        if (F16 != 0) {
            for (uint r = 0; r < p.Tq; r++) {
                sS[r * NT + t] = rnd16(sS[r * NT + t]);
            }
            barrier();
        }
        for (uint r = 0; r < p.Tq; r++) {
            const float l = sSum[r];
            const uint oBase = p.offO + b * p.batO + h * D + r * p.tokO;
            for (uint d = t; d < D; d += NT) {
                float o = 0.0;
                for (uint j = 0; j < nk; j++) {
                    o = fma(sS[r * NT + j], opF16(V_[vBase + (k0 + j) * p.tokV + d]), o);
                }
                O_[oBase + d] = l > 0.0 ? o / l : 0.0;
            }
        }
        if (t < p.Tq && (p.flags & 4u) != 0) {
            const float l = sSum[t];
            L_[p.offL + (b * p.H + h) * p.Tq + t] = l > 0.0 ? sMax[t] + log(l) : POS_INF;
        }
        return;
    }
    for (uint r = 0; r < p.Tq; r++) {
        uint base = part(b, h, r, c);
        if (t == 0) {
            float l = 0.0;
            for (uint j = 0; j < nk; j++) {
                l += sS[r * NT + j];
            }
            P_[base] = sMax[r];
            P_[base + 1] = l;
        }
    }
    if (F16 != 0) {
        barrier(); // the sums above read the unrounded probabilities
        for (uint r = 0; r < p.Tq; r++) {
            sS[r * NT + t] = rnd16(sS[r * NT + t]);
        }
        barrier();
    }
    for (uint r = 0; r < p.Tq; r++) {
        uint base = part(b, h, r, c);
        for (uint d = t; d < D; d += NT) {
            float o = 0.0;
            for (uint j = 0; j < nk; j++) {
                o = fma(sS[r * NT + j], opF16(V_[vBase + (k0 + j) * p.tokV + d]), o);
            }
            P_[base + 2 + d] = o;
        }
    }
}

void combinePass(uint t, uint r, uint h, uint b) {
    const uint D = p.D;
    float M = NEG_INF;
    for (uint c = 0; c < p.chunks; c++) {
        M = max(M, P_[part(b, h, r, c)]);
    }
    float L = 0.0;
    for (uint c = 0; c < p.chunks; c++) {
        uint base = part(b, h, r, c);
        float m = P_[base];
        if (m != NEG_INF) {
            L = fma(exp2((m - M) * LOG2E), P_[base + 1], L);
        }
    }
    const uint oBase = p.offO + b * p.batO + h * D + r * p.tokO;
    for (uint d = t; d < D; d += NT) {
        float o = 0.0;
        for (uint c = 0; c < p.chunks; c++) {
            uint base = part(b, h, r, c);
            float m = P_[base];
            if (m != NEG_INF) {
                o = fma(exp2((m - M) * LOG2E), P_[base + 2 + d], o);
            }
        }
        O_[oBase + d] = L > 0.0 ? o / L : 0.0;
    }
    if (t == 0 && (p.flags & 4u) != 0) {
        L_[p.offL + (b * p.H + h) * p.Tq + r] = L > 0.0 ? M + log(L) : POS_INF;
    }
}

#ifdef ONEPASS
shared uint lastChunk;

// combineLast: pass 1 for every row of (b, h), by the last of its chunks'
// workgroups to finish.
void combineLast(uint t, uint h, uint b) {
    memoryBarrierBuffer(); // this invocation's records before the count
    barrier();
    const uint ci = p.offCnt + b * p.H + h;
    if (t == 0) {
        lastChunk = atomicAdd(Cnt_[ci], 1u) == p.chunks - 1u ? 1u : 0u;
    }
    barrier();
    if (lastChunk == 0u) {
        return;
    }
    memoryBarrierBuffer();
    for (uint r = 0; r < p.Tq; r++) {
        combinePass(t, r, h, b);
    }
    if (t == 0) {
        Cnt_[ci] = 0u;
    }
}
#endif

void main() {
    const uint t = gl_LocalInvocationIndex;
    const uint h = gl_WorkGroupID.y + p.headBase;
    const uint b = gl_WorkGroupID.z;
    if (MODE != 1) {
        chunkPass(t, gl_WorkGroupID.x + p.xBase, h, b);
#ifdef ONEPASS
        if (MODE == 4) {
            combineLast(t, h, b);
        }
#endif
    } else {
        combinePass(t, gl_WorkGroupID.x + p.xBase, h, b);
    }
}
