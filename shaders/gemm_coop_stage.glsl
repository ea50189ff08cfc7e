// gemm_coop.glsl's staging for the forward layouts: registers to shared
// memory element by element (included by gemm_coop.glsl).
// The main loop's forms for this staging (gemm_coop.glsl): shared rows of
// SK f16 elements, every K step staged and multiplied.
#define COOP_SROW SK
#define COOP_KOFF(kk) (kk)
#define COOP_MORE(k0) (k0 + BK < p.K)
#define COOP_PRODUCTS true

// Staging. Each K step's tiles are fetched from global memory into
// registers (all of an invocation's loads issued together, the next
// step's while the current one multiplies), then rounded and stored to
// shared memory. Where an operand is 16-byte aligned (flag bits 5 and 6)
// its loads are vec4s: along k where A's rows and B's columns are
// contiguous along k (a linear layer's forward), along m or n (bits 7 and
// 8) where A is stored (K, M) or B (K, N) (the input and weight gradients
// of training), the four values then going to four rows of sA or sB.
// Elsewhere they are single elements with any strides, consecutive
// invocations on consecutive addresses (along m or n where the operand is
// contiguous there), so that a subgroup's loads coalesce rather than each
// touching its own row.
const uint TA4 = BM * BK / 4, TB4 = BN * BK / 4; // vec4s in a tile
const uint TA1 = BM * BK, TB1 = BN * BK;         // elements in a tile
const uint LA4 = (TA4 + WG - 1) / WG, LB4 = (TB4 + WG - 1) / WG;
const uint LA1 = (TA1 + WG - 1) / WG, LB1 = (TB1 + WG - 1) / WG;
vec4 ra4[LA4];
float ra1[LA1];
BTYPE4 rb4[LB4];
BTYPE rb1[LB1];

uint t, m0, n0, aBase, bBase, am, ak, bk, bn;
bool vecA, vecB, alongM, alongN;

// The tile coordinates (row or column within the block, k within the
// step) of vec4 i of A's tile or B's (rows: BM or BN): four consecutive k
// or, along m or n, four consecutive rows.
uvec2 vecAt(uint i, uint rows, bool along) {
    return along ? uvec2((i % (rows / 4)) * 4, i / (rows / 4)) : uvec2(i / (BK / 4), (i % (BK / 4)) * 4);
}

void fetch(uint k0) {
    if (vecA) {
        [[unroll]] for (uint l = 0; l < LA4; l++) {
            uint i = t + l * WG;
            uvec2 at = vecAt(i, BM, alongM);
            uint gm = m0 + at.x, gk = k0 + at.y;
            ra4[l] = vec4(0.0);
            if (i < TA4 && gm < p.M && gk < p.K) {
                ra4[l] = A4_[(aBase + gm * am + gk * ak) / 4];
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LA1; l++) {
            uint i = t + l * WG;
            uint gm = m0 + i / BK, gk = k0 + i % BK;
            if (am == 1u) {
                gm = m0 + i % BM;
                gk = k0 + i / BM;
            }
            ra1[l] = 0.0;
            if (i < TA1 && gm < p.M && gk < p.K) {
                ra1[l] = A_[aBase + gm * am + gk * ak];
            }
        }
    }
    if (vecB) {
        [[unroll]] for (uint l = 0; l < LB4; l++) {
            uint i = t + l * WG;
            uvec2 at = vecAt(i, BN, alongN);
            uint gn = n0 + at.x, gk = k0 + at.y;
            rb4[l] = BTYPE4(0.0);
            if (i < TB4 && gn < p.N && gk < p.K) {
                rb4[l] = B4_[(bBase + gk * bk + gn * bn) / 4];
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LB1; l++) {
            uint i = t + l * WG;
            uint gn = n0 + i / BK, gk = k0 + i % BK;
            if (bn == 1u) {
                gn = n0 + i % BN;
                gk = k0 + i / BN;
            }
            rb1[l] = BTYPE(0.0);
            if (i < TB1 && gn < p.N && gk < p.K) {
                rb1[l] = B_[bBase + gk * bk + gn * bn];
            }
        }
    }
}

// toHalf is gpu.Gemm.F16's rounding (round to nearest even): the module's
// rounding mode for 16-bit results, or with SWR rnd16, whose result is an
// f16 value that any conversion keeps.
float16_t toHalf(float v) { return SWR ? float16_t(rnd16(v)) : float16_t(v); }
float16_t toHalf(float16_t v) { return v; }

// store writes the fetched tiles as sA[m][k] and sB[n][k].
void store() {
    if (vecA) {
        const uint st = alongM ? SK : 1u; // between the vec4's values in sA
        [[unroll]] for (uint l = 0; l < LA4; l++) {
            uint i = t + l * WG;
            if (i < TA4) {
                uvec2 at = vecAt(i, BM, alongM);
                uint o = at.x * SK + at.y;
                sA[o] = toHalf(ra4[l].x);
                sA[o + st] = toHalf(ra4[l].y);
                sA[o + 2 * st] = toHalf(ra4[l].z);
                sA[o + 3 * st] = toHalf(ra4[l].w);
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LA1; l++) {
            uint i = t + l * WG;
            if (i < TA1) {
                uint o = am == 1u ? (i % BM) * SK + i / BM : (i / BK) * SK + i % BK;
                sA[o] = toHalf(ra1[l]);
            }
        }
    }
    if (vecB) {
        const uint st = alongN ? SK : 1u;
        [[unroll]] for (uint l = 0; l < LB4; l++) {
            uint i = t + l * WG;
            if (i < TB4) {
                uvec2 at = vecAt(i, BN, alongN);
                uint o = at.x * SK + at.y;
                sB[o] = toHalf(rb4[l].x);
                sB[o + st] = toHalf(rb4[l].y);
                sB[o + 2 * st] = toHalf(rb4[l].z);
                sB[o + 3 * st] = toHalf(rb4[l].w);
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LB1; l++) {
            uint i = t + l * WG;
            if (i < TB1) {
                uint o = bn == 1u ? (i % BN) * SK + i / BN : (i / BK) * SK + i % BK;
                sB[o] = toHalf(rb1[l]);
            }
        }
    }
}

