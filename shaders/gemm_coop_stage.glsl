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

#ifdef PREFETCH2
// A second register set: the loads of step k + 2 in flight while step k
// + 1 is stored from the first (gemm_coop.glsl's PREFETCH2 loop).
vec4 ra4b[LA4];
float ra1b[LA1];
BTYPE4 rb4b[LB4];
BTYPE rb1b[LB1];
#endif

uint t, m0, n0, aBase, bBase, am, ak, bk, bn;
bool vecA, vecB, alongM, alongN;

// The tile coordinates (row or column within the block, k within the
// step) of vec4 i of A's tile or B's (rows: BM or BN): four consecutive k
// or, along m or n, four consecutive rows.
uvec2 vecAt(uint i, uint rows, bool along) {
    return along ? uvec2((i % (rows / 4)) * 4, i / (rows / 4)) : uvec2(i / (BK / 4), (i % (BK / 4)) * 4);
}

// toHalf is gpu.Gemm.F16's rounding (round to nearest even): the module's
// rounding mode for 16-bit results, or with SWR rnd16, whose result is an
// f16 value that any conversion keeps.
float16_t toHalf(float v) { return SWR ? float16_t(rnd16(v)) : float16_t(v); }
float16_t toHalf(float16_t v) { return v; }

#define RA4 ra4
#define RA1 ra1
#define RB4 rb4
#define RB1 rb1
#define FETCH fetch
#define STORE store
#include "gemm_coop_stage_io.glsl"
#ifdef PREFETCH2
#undef RA4
#undef RA1
#undef RB4
#undef RB1
#undef FETCH
#undef STORE
#define RA4 ra4b
#define RA1 ra1b
#define RB4 rb4b
#define RB1 rb1b
#define FETCH fetchB
#define STORE storeB
#include "gemm_coop_stage_io.glsl"
#endif
