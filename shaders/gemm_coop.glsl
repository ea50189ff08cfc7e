// gpu.Gemm with F16 (half-precision products) on tensor cores
// (cooperative matrices): the contract of gemm.comp, with A, and B where it
// is stored in f32 (B_F32: the weight gradient of mixed-precision
// training, dW = dY^T X), rounded to f16 on their way into shared memory
// (round to nearest even, gemm_round.glsl, as gpu.Gemm.F16 defines) and fp32
// accumulation. A B stored in f16 (weights under --precision fp16) is
// copied as it is.
//
// A workgroup of four subgroups (WG = 4 * the device's subgroup size: 128 on
// NVIDIA, 32 on lavapipe) computes a 64 x 64 block of C; subgroup s owns the
// 32 x 32 quarter (s / 2, s % 2) as NF x NF matrices of FRAG x FRAG x FRAG,
// the fragment shape the device lists: 16 (gemm_coop.comp, NVIDIA's tensor
// cores) or 8 (gemm_coop8.comp, lavapipe's only shape). K advances in steps
// of BK through shared memory: A as sA[m][k], B as sB[n][k] (so that a
// block of B is a column-major load), rows padded against bank conflicts;
// the next step's tiles are loaded into registers while the current one
// multiplies. (The first form staged element by element, each load
// waiting for the last: 12 TFLOP/s at 4096^3 on an H100.)
// Ragged edges are zero-filled on load and skipped on store; the epilogue
// (alpha, bias, activation, beta * C) runs from a shared fp32 tile.
//
// Written against GL_NV_cooperative_matrix, the extension Debian 12's
// glslc compiles; the build translates each module to the Khronos one
// (shaders/nv2khr: gemm_coop_khr.spv, gemm_coop8_khr.spv), the form AMD,
// Intel and lavapipe run.
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"
#include "gemm_round.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;     // invocations: four subgroups
// TransA and TransB are flag bits 3 and 4 (gemm_push.glsl), not
// specialization constants: they only pick the strides of the staging
// loads, and each pipeline of this shader costs seconds to build where
// cooperative matrices are emulated (lavapipe).

const uint BM = 64, BN = 64, BK = 32;
const uint SK = BK + 8;   // shared row stride (f16 elements) of sA and sB
const uint SC = BN + 4;   // shared row stride (floats) of the C tile

layout(binding = 0) readonly buffer BufA { float A_[]; };
layout(binding = 0) readonly buffer BufA4 { vec4 A4_[]; };
#ifdef B_F32
layout(binding = 1) readonly buffer BufB { float B_[]; };
layout(binding = 1) readonly buffer BufB4 { vec4 B4_[]; };
#define BTYPE float
#define BTYPE4 vec4
#else
layout(binding = 1) readonly buffer BufB { float16_t B_[]; };
layout(binding = 1) readonly buffer BufB4 { f16vec4 B4_[]; };
#define BTYPE float16_t
#define BTYPE4 f16vec4
#endif
layout(binding = 2) buffer BufC { float C_[]; };
layout(binding = 3) readonly buffer BufBias { float Bias_[]; };

#include "gemm_push.glsl"
#include "gemm_epi.glsl"

shared float16_t sA[BM * SK];
shared float16_t sB[BN * SK];
shared float sC[BM * SC];

const uint NF = 32 / FRAG; // fragments per side of a subgroup's quarter
#define CM16 fcoopmatNV<16, gl_ScopeSubgroup, FRAG, FRAG>
#define CM32 fcoopmatNV<32, gl_ScopeSubgroup, FRAG, FRAG>

// Staging. Each K step's tiles are fetched from global memory into
// registers (all of an invocation's loads issued together, the next
// step's while the current one multiplies), then rounded and stored to
// shared memory. Where A's rows and B's columns are contiguous along k and
// 16-byte aligned (flag bits 5 and 6: a linear layer's forward) the loads
// are vec4s, else single elements with any strides.
const uint T4 = BM * BK / 4; // vec4s in a tile (BM == BN)
const uint T1 = BM * BK;     // elements in a tile
const uint L4 = (T4 + WG - 1) / WG;
const uint L1 = (T1 + WG - 1) / WG;
vec4 ra4[L4];
float ra1[L1];
BTYPE4 rb4[L4];
BTYPE rb1[L1];

uint t, m0, n0, aBase, bBase, am, ak, bk, bn;
bool vecA, vecB;

void fetch(uint k0) {
    if (vecA) {
        [[unroll]] for (uint l = 0; l < L4; l++) {
            uint i = t + l * WG;
            uint gm = m0 + i / (BK / 4), gk = k0 + (i % (BK / 4)) * 4;
            ra4[l] = vec4(0.0);
            if (i < T4 && gm < p.M && gk < p.K) {
                ra4[l] = A4_[(aBase + gm * p.lda + gk) / 4];
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < L1; l++) {
            uint i = t + l * WG;
            uint gm = m0 + i / BK, gk = k0 + i % BK;
            ra1[l] = 0.0;
            if (i < T1 && gm < p.M && gk < p.K) {
                ra1[l] = A_[aBase + gm * am + gk * ak];
            }
        }
    }
    if (vecB) {
        [[unroll]] for (uint l = 0; l < L4; l++) {
            uint i = t + l * WG;
            uint gn = n0 + i / (BK / 4), gk = k0 + (i % (BK / 4)) * 4;
            rb4[l] = BTYPE4(0.0);
            if (i < T4 && gn < p.N && gk < p.K) {
                rb4[l] = B4_[(bBase + gn * p.ldb + gk) / 4];
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < L1; l++) {
            uint i = t + l * WG;
            uint gn = n0 + i / BK, gk = k0 + i % BK;
            rb1[l] = BTYPE(0.0);
            if (i < T1 && gn < p.N && gk < p.K) {
                rb1[l] = B_[bBase + gk * bk + gn * bn];
            }
        }
    }
}

// toHalf is gpu.Gemm.F16's rounding; rnd16's result is an f16 value, so
// the conversion is exact whatever the device's rounding mode.
float16_t toHalf(float v) { return float16_t(rnd16(v)); }
float16_t toHalf(float16_t v) { return v; }

// store writes the fetched tiles as sA[m][k] and sB[n][k].
void store() {
    if (vecA) {
        [[unroll]] for (uint l = 0; l < L4; l++) {
            uint i = t + l * WG;
            if (i < T4) {
                uint o = (i / (BK / 4)) * SK + (i % (BK / 4)) * 4;
                sA[o] = toHalf(ra4[l].x);
                sA[o + 1] = toHalf(ra4[l].y);
                sA[o + 2] = toHalf(ra4[l].z);
                sA[o + 3] = toHalf(ra4[l].w);
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < L1; l++) {
            uint i = t + l * WG;
            if (i < T1) {
                sA[(i / BK) * SK + i % BK] = toHalf(ra1[l]);
            }
        }
    }
    if (vecB) {
        [[unroll]] for (uint l = 0; l < L4; l++) {
            uint i = t + l * WG;
            if (i < T4) {
                uint o = (i / (BK / 4)) * SK + (i % (BK / 4)) * 4;
                sB[o] = toHalf(rb4[l].x);
                sB[o + 1] = toHalf(rb4[l].y);
                sB[o + 2] = toHalf(rb4[l].z);
                sB[o + 3] = toHalf(rb4[l].w);
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < L1; l++) {
            uint i = t + l * WG;
            if (i < T1) {
                sB[(i / BK) * SK + i % BK] = toHalf(rb1[l]);
            }
        }
    }
}

void main() {
    t = gl_LocalInvocationIndex;
    const uint sg = gl_SubgroupID;
    m0 = gl_WorkGroupID.y * BM;
    n0 = gl_WorkGroupID.x * BN;
    const uint batch = gl_WorkGroupID.z;
    aBase = p.offA + batch * p.strideA;
    bBase = p.offB + batch * p.strideB;
    const uint cBase = p.offC + batch * p.strideC;
    const uint sm = (sg / 2) * 32, sn = (sg % 2) * 32; // the subgroup's quarter
    // Strides of A's element (m, k) and B's (k, n): A stored (K, M) with
    // TransA, B stored (N, K) with TransB.
    const bool ta = (p.flags & 8u) != 0, tb = (p.flags & 16u) != 0;
    am = ta ? 1u : p.lda;
    ak = ta ? p.lda : 1u;
    bk = tb ? 1u : p.ldb;
    bn = tb ? p.ldb : 1u;
    vecA = (p.flags & 32u) != 0;
    vecB = (p.flags & 64u) != 0;

    CM32 acc[NF][NF];
    [[unroll]] for (uint i = 0; i < NF; i++) {
        [[unroll]] for (uint j = 0; j < NF; j++) {
            acc[i][j] = CM32(0.0);
        }
    }

    fetch(0);
    store();
    barrier();
    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        const bool more = k0 + BK < p.K;
        if (more) {
            fetch(k0 + BK);
        }
        [[unroll]] for (uint kk = 0; kk < BK; kk += FRAG) {
            CM16 a[NF], b[NF];
            [[unroll]] for (uint i = 0; i < NF; i++) {
                coopMatLoadNV(a[i], sA, (sm + FRAG * i) * SK + kk, SK, false);
                coopMatLoadNV(b[i], sB, (sn + FRAG * i) * SK + kk, SK, true);
            }
            [[unroll]] for (uint i = 0; i < NF; i++) {
                [[unroll]] for (uint j = 0; j < NF; j++) {
                    acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
                }
            }
        }
        barrier();
        if (more) {
            store();
            barrier();
        }
    }

    [[unroll]] for (uint i = 0; i < NF; i++) {
        [[unroll]] for (uint j = 0; j < NF; j++) {
            coopMatStoreNV(acc[i][j], sC, (sm + FRAG * i) * SC + sn + FRAG * j, SC, false);
        }
    }
    barrier();
    const bool hasBias = (p.flags & 1u) != 0;
    const uint act = (p.flags >> 1) & 3u;
    for (uint i = t; i < BM * BN; i += WG) {
        uint r = i / BN, c = i % BN;
        uint gm = m0 + r, gn = n0 + c;
        if (gm >= p.M || gn >= p.N) {
            continue;
        }
        uint ci = cBase + gm * p.ldc + gn;
        C_[ci] = epi(sC[r * SC + c], gn, ci, hasBias, act);
    }
}
