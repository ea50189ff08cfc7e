// gpu.Gemm with F16 (half-precision products) on tensor cores
// (cooperative matrices): the contract of gemm.comp, with A, and B where it
// is stored in f32 (B_F32: the weight gradient of mixed-precision
// training, dW = dY^T X), rounded to f16 on their way into shared memory
// and fp32 accumulation. A B stored in f16 (weights under --precision
// fp16) is copied as it is.
//
// A workgroup of SGM x SGN subgroups (WG = SGM * SGN * the device's
// subgroup size) computes a BM x BN block of C; each subgroup owns a
// (WM * FRAG) x (WN * FRAG) part of it as WM x WN accumulators of
// FRAG x FRAG x FRAG, the fragment shape the device lists: 16 (NVIDIA's
// tensor cores) or 8 (lavapipe's only shape). Two layouts are built:
//   - gemm_coop.comp, gemm_coop8.comp: 2 x 2 subgroups of 32 x 32, a
//     64 x 64 block (four times the workgroups of the wide one, for the
//     products that would not fill the device with it);
//   - gemm_coopw.comp, gemm_coop8w.comp (wide): 2 x 4 subgroups of
//     (4 FRAG) x (2 FRAG): 128 x 128 at FRAG 16, eight tensor-core products
//     per six fragment loads and a fourth of the staging per product.
// K advances in steps of BK through shared memory: A as sA[m][k], B as
// sB[n][k] (so that a block of B is a column-major load), rows padded
// against bank conflicts; the next step's tiles are loaded into registers
// while the current one multiplies. (The first form staged element by
// element, each load waiting for the last: 12 TFLOP/s at 4096^3 on an
// H100.)
//
// The rounding to f16 is the hardware conversion under the RoundingModeRTE
// execution mode for 16-bit results (SPV_KHR_float_controls): round to
// nearest even, gpu.Round(F16, x) as gpu.Gemm.F16 defines it, guaranteed
// by the mode where the device lists shaderRoundingModeRTEFloat16. The
// integer rounding of gemm_round.glsl (about fifteen instructions per
// element, as many as the tensor cores' share) is left to devices without
// the mode (specialization constant SWR; gpu/vk/rounding.go).
//
// Ragged edges are zero-filled on load and skipped on store. The
// epilogue (alpha, bias, activation, beta * C) runs per subgroup: each
// row of its fragments goes through a small fp32 tile in shared memory,
// from which its invocations write whole rows of C.
//
// Written against GL_NV_cooperative_matrix, the extension Debian 12's
// glslc compiles; the build translates each module to the Khronos one
// (shaders/nv2khr: gemm_coop_khr.spv, ...), the form AMD, Intel and
// lavapipe run.
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_spirv_intrinsics : require
#include "common.glsl"
#include "gemm_round.glsl"

// OpExecutionMode RoundingModeRTE 16 (capability RoundingModeRTE, 4467).
// Devices without it get the module with the mode stripped and SWR set
// (gpu/vk/rounding.go).
spirv_execution_mode(extensions = ["SPV_KHR_float_controls"], capabilities = [4467], 4462, 16);

#ifndef SGM
#define SGM 2            // subgroups along M
#define SGN 2            // subgroups along N
#define WM (32 / FRAG)   // fragments per subgroup along M
#define WN (32 / FRAG)   // fragments per subgroup along N
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;     // invocations: SGM * SGN subgroups
layout(constant_id = 1) const bool SWR = false;  // round in integers (no RTE mode)
#ifdef COOP_T
// Profiling only (BLIP_COOP_DIAG, gpu/vk/gemm_coop.go), wrong results by
// design: 1 leaves out the products (the staging alone is timed), 2 stages
// only the first K step (the fragment loads and products alone).
layout(constant_id = 2) const uint DIAG = 0;
#endif
// TransA and TransB are flag bits 3 and 4 (gemm_push.glsl), not
// specialization constants: they only pick the strides of the staging
// loads, and each pipeline of this shader costs seconds to build where
// cooperative matrices are emulated (lavapipe).

const uint BM = SGM * WM * FRAG, BN = SGN * WN * FRAG, BK = 32;
const uint SK = BK + 8;          // shared row stride (f16 elements) of sA and sB
#ifdef COOP_T
const uint SK4 = SK / 4;         // the same in f16vec4s
#endif
const uint SC = WN * FRAG + 4;   // row stride (floats) of a subgroup's C rows

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
#ifdef B_F32
#define LDA(i) A_[i]
#define LDA4(i) A4_[i]
#define LDC(i) C_[i]
#define STC(i, v) C_[i] = (v)
#else
// 16-bit activations (fp16 inference): A and C may be stored in f16
// (gpu.Gemm; A never in bf16 under F16 products, a bf16 C runs elsewhere).
// An f16 A is widened exactly and rounds to itself on its way to shared
// memory; C goes through toHalf, the staging's rounding. The _bf32 builds
// (training's weight gradient) declare no 16-bit storage.
layout(constant_id = 3) const bool A16 = false;
layout(constant_id = 4) const bool C16 = false;
layout(binding = 0) readonly buffer BufAh { float16_t Ah_[]; };
layout(binding = 0) readonly buffer BufAh4 { f16vec4 Ah4_[]; };
layout(binding = 2) buffer BufCh { float16_t Ch_[]; };
#define LDA(i) (A16 ? float(Ah_[i]) : A_[i])
#define LDA4(i) (A16 ? vec4(Ah4_[i]) : A4_[i])
#define LDC(i) (C16 ? float(Ch_[i]) : C_[i])
#define STC(i, v) \
    if (C16) { \
        Ch_[i] = toHalf(v); \
    } else { \
        C_[i] = (v); \
    }
#endif

#include "gemm_push.glsl"
#include "gemm_epi.glsl"

#ifdef COOP_T
// Four f16 per element (packed in a uvec2): a row's four consecutive k go
// in with one 8-byte store, and the fragment loads see 8-byte aligned
// rows. (Debian 12's glslc loads f16 fragments from 32-bit arrays, not
// from f16vec4 ones.)
shared uvec2 sA[BM * SK4];
shared uvec2 sB[BN * SK4];
#else
shared float16_t sA[BM * SK];
shared float16_t sB[BN * SK];
#endif
shared float sC[SGM * SGN * FRAG * SC]; // per subgroup: FRAG rows of its part
#define CM16 fcoopmatNV<16, gl_ScopeSubgroup, FRAG, FRAG>
#define CM32 fcoopmatNV<32, gl_ScopeSubgroup, FRAG, FRAG>

#ifdef COOP_T
#include "gemm_coop_stage_t.glsl"
#else
#include "gemm_coop_stage.glsl"
#endif

// PRODUCTS adds the K step in sA and sB to the subgroup's accumulators
// (a macro, not a function: the builds without PREFETCH2 keep the code
// they had).
#define PRODUCTS() \
    [[unroll]] for (uint kk = 0; kk < BK; kk += FRAG) { \
        CM16 a[WM], b[WN]; \
        [[unroll]] for (uint i = 0; i < WM; i++) { \
            coopMatLoadNV(a[i], sA, (sm + FRAG * i) * COOP_SROW + COOP_KOFF(kk), COOP_SROW, false); \
        } \
        [[unroll]] for (uint j = 0; j < WN; j++) { \
            coopMatLoadNV(b[j], sB, (sn + FRAG * j) * COOP_SROW + COOP_KOFF(kk), COOP_SROW, true); \
        } \
        [[unroll]] for (uint i = 0; i < WM; i++) { \
            [[unroll]] for (uint j = 0; j < WN; j++) { \
                acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]); \
            } \
        } \
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
    // The subgroup's part of the block: rows sm.., columns sn...
    const uint sm = (sg / SGN) * WM * FRAG, sn = (sg % SGN) * WN * FRAG;
    // Strides of A's element (m, k) and B's (k, n): A stored (K, M) with
    // TransA, B stored (N, K) with TransB.
    const bool ta = (p.flags & 8u) != 0, tb = (p.flags & 16u) != 0;
    am = ta ? 1u : p.lda;
    ak = ta ? p.lda : 1u;
    bk = tb ? 1u : p.ldb;
    bn = tb ? p.ldb : 1u;
    vecA = (p.flags & 32u) != 0;
    vecB = (p.flags & 64u) != 0;
    alongM = (p.flags & 128u) != 0;
    alongN = (p.flags & 256u) != 0;

    CM32 acc[WM][WN];
    [[unroll]] for (uint i = 0; i < WM; i++) {
        [[unroll]] for (uint j = 0; j < WN; j++) {
            acc[i][j] = CM32(0.0);
        }
    }

    fetch(0);
    store();
    barrier();
#ifdef PREFETCH2
    // Two K steps ahead: step k + 2's loads are issued before step k's
    // products, into the register set that step k + 1 was stored from,
    // and stored after step k + 1's products, an iteration later, so their
    // latency spans two steps' products and one store. The loop is
    // unrolled by two so that each half names its register set.
    if (BK < p.K) {
        fetchB(BK);
    }
    for (uint k0 = 0; k0 < p.K; k0 += 2 * BK) {
        if (k0 + 2 * BK < p.K) {
            fetch(k0 + 2 * BK);
        }
        PRODUCTS();
        barrier();
        if (k0 + BK >= p.K) {
            break;
        }
        storeB();
        barrier();
        if (k0 + 3 * BK < p.K) {
            fetchB(k0 + 3 * BK);
        }
        PRODUCTS();
        barrier();
        if (k0 + 2 * BK < p.K) {
            store();
            barrier();
        }
    }
#else
    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        const bool more = COOP_MORE(k0);
        if (more) {
            fetch(k0 + BK);
        }
        if (COOP_PRODUCTS) {
            PRODUCTS();
        }
        barrier();
        if (more) {
            store();
            barrier();
        }
    }
#endif

    // Epilogue, per subgroup and per row of fragments: the row's WN
    // accumulators into the subgroup's FRAG x (WN * FRAG) tile, then each
    // invocation a strided share of its elements, consecutive invocations
    // on consecutive columns of C.
    const bool hasBias = (p.flags & 1u) != 0;
    const uint act = (p.flags >> 1) & 3u;
    const uint cw = WN * FRAG;
    const uint own = sg * FRAG * SC;
    [[unroll]] for (uint i = 0; i < WM; i++) {
        [[unroll]] for (uint j = 0; j < WN; j++) {
            coopMatStoreNV(acc[i][j], sC, own + FRAG * j, SC, false);
        }
        controlBarrier(gl_ScopeSubgroup, gl_ScopeSubgroup, gl_StorageSemanticsShared, gl_SemanticsAcquireRelease);
        for (uint e = gl_SubgroupInvocationID; e < FRAG * cw; e += gl_SubgroupSize) {
            uint r = e / cw, c = e % cw;
            uint gm = m0 + sm + FRAG * i + r, gn = n0 + sn + c;
            if (gm < p.M && gn < p.N) {
                uint ci = cBase + gm * p.ldc + gn;
                STC(ci, epi(sC[own + r * SC + c], gn, ci, hasBias, act));
            }
        }
        controlBarrier(gl_ScopeSubgroup, gl_ScopeSubgroup, gl_StorageSemanticsShared, gl_SemanticsAcquireRelease);
    }
}
