#version 450
// gpu.Gemm with F16 on NVIDIA's cooperative matrix 2
// (GL_NV_cooperative_matrix2, VK_NV_cooperative_matrix2): the contract of
// gemm.comp with A and B already rounded to f16 (gpu/vk/gemm_cm2.go casts an
// f32 operand into the device scratch first: gpu.Gemm.F16's rounding is
// that cast's, round to nearest even) and fp32 accumulation.
//
// Why this form exists: gemm_coop.glsl (subgroup-scope fragments, the
// staging through shared memory written out by hand) reached 15-57 TFLOP/s
// on an H200 whose tensor cores did 240-400 with the staging left out
// (gpu/bench/NOTES.md). Here a workgroup owns one BM x BN block of C as a
// single workgroup-scope matrix and loads BM x BK and BK x BN tiles of A and
// B straight from global memory as tensors; the driver stages them through
// shared memory (its own double buffering, swizzles, asynchronous copies),
// which is the part the hand-written staging could not make fast.
//
// The block is specialization constants (BM, BN, BK; the workgroup size
// WG), chosen by gpu/vk/gemm_cm2.go among the multiples of the
// granularities the device lists for workgroup-scope f16 x f16 + f32
// matrices. TA and TB (A stored (K, M), B stored (N, K)) are
// specialization constants too: their loads differ by a transposing
// tensor view, and a pipeline per layout costs little on the drivers that
// have this extension.
//
// Ragged edges: blocks that overhang M, N or K load through layouts that
// clamp (zeros outside the tensor) and every block stores through one
// (elements outside C are not written); blocks inside take the unclamped
// loads. The epilogue (alpha, bias, activation, beta * C) runs per element
// (coopMatPerElementNV) before the store.
//
// Needs SPIR-V 1.6 (Vulkan 1.3) and a newer glslc than Debian 12's: the
// build compiles it with Debian 13's (.ci/trixie-tools, make shaders).
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int32 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint BM = 128;
layout(constant_id = 2) const uint BN = 128;
layout(constant_id = 3) const uint BK = 32;
layout(constant_id = 4) const bool TA = false; // A stored (K, M)
layout(constant_id = 5) const bool TB = true;  // B stored (N, K)

layout(binding = 0) readonly buffer BufA { float16_t A_[]; };
layout(binding = 1) readonly buffer BufB { float16_t B_[]; };
layout(binding = 2) buffer BufC { float C_[]; };
layout(binding = 3) readonly buffer BufBias { float Bias_[]; };

#include "gemm_push.glsl"
#define LDC(i) C_[i]
#include "gemm_epi.glsl"

#define ACC coopmat<float, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator>
#define MATA coopmat<float16_t, gl_ScopeWorkgroup, BM, BK, gl_MatrixUseA>
#define MATB coopmat<float16_t, gl_ScopeWorkgroup, BK, BN, gl_MatrixUseB>
#define CLAMPED tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV>

uint m0, n0, cBase;
bool hasBias;
uint act;

// cElem is the epilogue of element (r, c) of the block: gemm_epi.glsl's,
// where the element is inside C (the store drops the others).
float cElem(const in uint32_t r, const in uint32_t c, const in float v) {
    uint gm = m0 + r, gn = n0 + c;
    if (gm >= p.M || gn >= p.N) {
        return v;
    }
    return epi(v, gn, cBase + gm * p.ldc + gn, hasBias, act);
}

// STEP multiplies the tiles of K step k0 through layouts LA and LB (A's
// stored as (M, K), or (K, M) with TA; B's as (K, N), or (N, K) with TB).
#define STEP(LA, LB)                                                                             \
    {                                                                                            \
        MATA a;                                                                                  \
        MATB b;                                                                                  \
        if (TA) {                                                                                \
            coopMatLoadTensorNV(a, A_, aBase, sliceTensorLayoutNV(LA, k0, BK, m0, BM), tr);       \
        } else {                                                                                 \
            coopMatLoadTensorNV(a, A_, aBase, sliceTensorLayoutNV(LA, m0, BM, k0, BK));           \
        }                                                                                        \
        if (TB) {                                                                                \
            coopMatLoadTensorNV(b, B_, bBase, sliceTensorLayoutNV(LB, n0, BN, k0, BK), tr);       \
        } else {                                                                                 \
            coopMatLoadTensorNV(b, B_, bBase, sliceTensorLayoutNV(LB, k0, BK, n0, BN));           \
        }                                                                                        \
        acc = coopMatMulAdd(a, b, acc);                                                          \
    }

void main() {
    m0 = gl_WorkGroupID.y * BM;
    n0 = gl_WorkGroupID.x * BN;
    const uint batch = gl_WorkGroupID.z;
    const uint aBase = p.offA + batch * p.strideA;
    const uint bBase = p.offB + batch * p.strideB;
    cBase = p.offC + batch * p.strideC;
    hasBias = (p.flags & 1u) != 0;
    act = (p.flags >> 1) & 3u;

    // The operands as stored: A (M, K) or (K, M), B (K, N) or (N, K), C (M, N).
    const uint ar = TA ? p.K : p.M, ac = TA ? p.M : p.K;
    const uint br = TB ? p.N : p.K, bc = TB ? p.K : p.N;
    tensorLayoutNV<2> la = createTensorLayoutNV(2);
    tensorLayoutNV<2> lb = createTensorLayoutNV(2);
    CLAMPED laC = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    CLAMPED lbC = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    CLAMPED lc = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    la = setTensorLayoutStrideNV(setTensorLayoutDimensionNV(la, ar, ac), p.lda, 1);
    lb = setTensorLayoutStrideNV(setTensorLayoutDimensionNV(lb, br, bc), p.ldb, 1);
    laC = setTensorLayoutStrideNV(setTensorLayoutDimensionNV(laC, ar, ac), p.lda, 1);
    lbC = setTensorLayoutStrideNV(setTensorLayoutDimensionNV(lbC, br, bc), p.ldb, 1);
    lc = setTensorLayoutStrideNV(setTensorLayoutDimensionNV(lc, p.M, p.N), p.ldc, 1);
    tensorViewNV<2, false, 1, 0> tr = createTensorViewNV(2, false, 1, 0);

    ACC acc = ACC(0.0);
    const bool inside = m0 + BM <= p.M && n0 + BN <= p.N && p.K % BK == 0;
    if (inside) {
        for (uint k0 = 0; k0 < p.K; k0 += BK) {
            STEP(la, lb)
        }
    } else {
        for (uint k0 = 0; k0 < p.K; k0 += BK) {
            STEP(laC, lbC)
        }
    }
    coopMatPerElementNV(acc, acc, cElem);
    coopMatStoreTensorNV(acc, C_, cBase, sliceTensorLayoutNV(lc, m0, BM, n0, BN));
}
