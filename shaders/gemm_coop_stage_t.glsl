// gemm_coop.glsl's staging for the _t builds (included by gemm_coop.glsl
// under COOP_T): the calls with an operand stored along m or n (A stored
// (K, M), B stored (K, N): the input and weight gradients of training),
// with the same contract, block layouts and epilogue. Tiles go to shared memory four k of a row at a time (one packed
// 8-byte store, sA and sB as uvec2 arrays), an operand stored along m or n
// as blocks of four rows by four k, four vec4 loads across rows transposed
// in registers; the element-wise loads fill the same four-k units.
//
// Measured on an H200 (2026-11-28, one call, KHR 16x16x16, against the
// gemm_coop.glsl of the time; blip bench kernels --gemm ...:f16):
// dX-like 18464x768x3072 with B stored (K, N) 1.78 ms against 2.32,
// dW-like 768x3072x18464 with A stored (K, M) 3.82 ms against 11.2; on a
// linear layer's forward layout it was slower (18464x3072x768: 2.11 ms
// against 1.54), so gpu/vk sends only the transposed layouts here (and the
// forward ones with BLIP_COOP_STAGE=k4, for measuring). Those figures are
// of a build whose kk loop stayed rolled in SPIR-V (the DIAG condition was
// in the loop test, which stops spirv-opt's unrolling; 8 products in
// straight-line code instead of 16); DIAG now guards the loop from outside,
// so it unrolls as the forward builds' does. Not yet timed on a GPU.

// The main loop's forms for this staging (gemm_coop.glsl): shared rows of
// SK4 uvec2s, and the profiling switch DIAG outside the kk loop (inside its
// test it would keep spirv-opt from unrolling the loop).
#define COOP_SROW SK4
#define COOP_KOFF(kk) (kk / 4)
#define COOP_MORE(k0) (k0 + BK < p.K && DIAG != 2)
#define COOP_PRODUCTS (DIAG != 1)

// Staging. Each K step's tiles are fetched from global memory into
// registers (all of an invocation's loads issued together, the next
// step's while the current one multiplies), then rounded and stored to
// shared memory, four consecutive k of a row at a time (one 8-byte store).
// An invocation holds four k of one row per register ("k4"), loaded:
//   - as one vec4 where the operand is contiguous along k and 16-byte
//     aligned (flag bits 5 and 6: a linear layer's forward);
//   - as four elements elsewhere (any strides), consecutive invocations on
//     consecutive rows where the operand is contiguous along m or n, else
//     on consecutive k4 of a row, so that a subgroup's loads coalesce;
//   - along m or n (bits 7 and 8: A stored (K, M) or B (K, N), aligned;
//     the input and weight gradients of training) as a block of four rows
//     by four k, four vec4s across rows, transposed into four rows' k4.
const uint TA4 = BM * BK / 4, TB4 = BN * BK / 4; // k4 units in a tile
const uint LA4 = (TA4 + WG - 1) / WG, LB4 = (TB4 + WG - 1) / WG;
const uint LQA = (TA4 / 4 + WG - 1) / WG, LQB = (TB4 / 4 + WG - 1) / WG; // 4 x 4 blocks
const uint RA = LA4 > 4 * LQA ? LA4 : 4 * LQA, RB = LB4 > 4 * LQB ? LB4 : 4 * LQB;
vec4 ra[RA];
BTYPE4 rb[RB];

uint t, m0, n0, aBase, bBase, am, ak, bk, bn;
bool vecA, vecB, alongM, alongN;

// The row (within the block) and k (within the step) of k4 unit i of a
// tile of rows rows; byRow puts consecutive units on consecutive rows.
uvec2 unitAt(uint i, uint rows, bool byRow) {
    return byRow ? uvec2(i % rows, (i / rows) * 4) : uvec2(i / (BK / 4), (i % (BK / 4)) * 4);
}

// The first row and k of 4 x 4 block q (along m or n: consecutive blocks
// on consecutive rows).
uvec2 blockAt(uint q, uint rows) { return uvec2((q % (rows / 4)) * 4, (q / (rows / 4)) * 4); }

void fetch(uint k0) {
    if (alongM) {
        [[unroll]] for (uint l = 0; l < LQA; l++) {
            uint q = t + l * WG;
            uvec2 at = blockAt(q, BM);
            uint gm = m0 + at.x;
            [[unroll]] for (uint j = 0; j < 4; j++) {
                uint gk = k0 + at.y + j;
                ra[4 * l + j] = vec4(0.0);
                if (q < TA4 / 4 && gm < p.M && gk < p.K) {
                    ra[4 * l + j] = LDA4((aBase + gm * am + gk * ak) / 4);
                }
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LA4; l++) {
            uint i = t + l * WG;
            uvec2 at = unitAt(i, BM, !vecA && am == 1u);
            uint gm = m0 + at.x, gk = k0 + at.y;
            ra[l] = vec4(0.0);
            if (i < TA4 && gm < p.M) {
                if (vecA) {
                    if (gk < p.K) {
                        ra[l] = LDA4((aBase + gm * am + gk * ak) / 4);
                    }
                } else {
                    [[unroll]] for (uint j = 0; j < 4; j++) {
                        if (gk + j < p.K) {
                            ra[l][j] = LDA(aBase + gm * am + (gk + j) * ak);
                        }
                    }
                }
            }
        }
    }
    if (alongN) {
        [[unroll]] for (uint l = 0; l < LQB; l++) {
            uint q = t + l * WG;
            uvec2 at = blockAt(q, BN);
            uint gn = n0 + at.x;
            [[unroll]] for (uint j = 0; j < 4; j++) {
                uint gk = k0 + at.y + j;
                rb[4 * l + j] = BTYPE4(0.0);
                if (q < TB4 / 4 && gn < p.N && gk < p.K) {
                    rb[4 * l + j] = B4_[(bBase + gk * bk + gn * bn) / 4];
                }
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LB4; l++) {
            uint i = t + l * WG;
            uvec2 at = unitAt(i, BN, !vecB && bn == 1u);
            uint gn = n0 + at.x, gk = k0 + at.y;
            rb[l] = BTYPE4(0.0);
            if (i < TB4 && gn < p.N) {
                if (vecB) {
                    if (gk < p.K) {
                        rb[l] = B4_[(bBase + gk * bk + gn * bn) / 4];
                    }
                } else {
                    [[unroll]] for (uint j = 0; j < 4; j++) {
                        if (gk + j < p.K) {
                            rb[l][j] = B_[bBase + (gk + j) * bk + gn * bn];
                        }
                    }
                }
            }
        }
    }
}

// toHalf is gpu.Gemm.F16's rounding (round to nearest even): the module's
// rounding mode for 16-bit results, or with SWR rnd16, whose result is an
// f16 value that any conversion keeps.
float16_t toHalf(float v) { return SWR ? float16_t(rnd16(v)) : float16_t(v); }
float16_t toHalf(float16_t v) { return v; }

// pack4 rounds four k of a row and packs them as sA and sB hold them.
uvec2 pack4(vec4 v) {
    return uvec2(packFloat2x16(f16vec2(toHalf(v.x), toHalf(v.y))), packFloat2x16(f16vec2(toHalf(v.z), toHalf(v.w))));
}
uvec2 pack4(f16vec4 v) { return uvec2(packFloat2x16(v.xy), packFloat2x16(v.zw)); }

// store writes the fetched tiles as sA[m][k] and sB[n][k].
void store() {
    if (alongM) {
        [[unroll]] for (uint l = 0; l < LQA; l++) {
            uint q = t + l * WG;
            if (q < TA4 / 4) {
                uvec2 at = blockAt(q, BM);
                [[unroll]] for (uint j = 0; j < 4; j++) {
                    sA[(at.x + j) * SK4 + at.y / 4] = pack4(vec4(ra[4 * l][j], ra[4 * l + 1][j], ra[4 * l + 2][j], ra[4 * l + 3][j]));
                }
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LA4; l++) {
            uint i = t + l * WG;
            if (i < TA4) {
                uvec2 at = unitAt(i, BM, !vecA && am == 1u);
                sA[at.x * SK4 + at.y / 4] = pack4(ra[l]);
            }
        }
    }
    if (alongN) {
        [[unroll]] for (uint l = 0; l < LQB; l++) {
            uint q = t + l * WG;
            if (q < TB4 / 4) {
                uvec2 at = blockAt(q, BN);
                [[unroll]] for (uint j = 0; j < 4; j++) {
                    sB[(at.x + j) * SK4 + at.y / 4] = pack4(BTYPE4(rb[4 * l][j], rb[4 * l + 1][j], rb[4 * l + 2][j], rb[4 * l + 3][j]));
                }
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LB4; l++) {
            uint i = t + l * WG;
            if (i < TB4) {
                uvec2 at = unitAt(i, BN, !vecB && bn == 1u);
                sB[at.x * SK4 + at.y / 4] = pack4(rb[l]);
            }
        }
    }
}

