#version 450
// gpu.Attention with F16 on NVIDIA's cooperative matrix 2
// (GL_NV_cooperative_matrix2), the attention counterpart of gemm_cm2.comp:
// Q, K and V already rounded to f16 (gpu/vk/attention_cm2.go casts them
// into the device scratch), one workgroup per BR queries of one (batch,
// head), keys in tiles of BC, the staging of every tile left to the driver.
//
// gpu.Attention.F16 rounds the probabilities after the shift by the row's
// final maximum, so the kernel makes two passes over the keys:
//   1. S = Scale * Q K^T + Mask per tile (fp32 accumulators), masked and
//      causal keys and those past Tk at -Inf; M = the running row maximum
//      (coopMatReduceNV, then an element-wise max);
//   2. S again, P = exp(S - M) in fp32 (exp_acc), L += P, and
//      O += f16(P) V, the conversion to f16 under the RoundingModeRTE mode
//      (round to nearest even, gpu.Round(F16, x)).
// Then O / l (l the row sums of L; rows without keys give zeros), stored
// through a clamped tensor layout, and with LSE m + log l. The second pass
// recomputes QK^T rather than keep it: 1.5x the products of one pass, no
// memory proportional to Tk.
//
// Specialization constants: WG invocations, BR x BC tiles, D the head
// dimension (a multiple of the device's granularities; attention_cm2.go
// keeps other shapes on the other kernels). The push constants are
// attention.comp's.
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int32 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#extension GL_EXT_spirv_intrinsics : require
#include "common.glsl"

// OpExecutionMode RoundingModeRTE 16: f16(P) rounds to nearest even.
spirv_execution_mode(extensions = ["SPV_KHR_float_controls"], capabilities = [4467], 4462, 16);

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint BR = 64;
layout(constant_id = 2) const uint BC = 64;
layout(constant_id = 3) const uint D = 64;

layout(binding = 0) readonly buffer BufQ { float16_t Q_[]; };
layout(binding = 1) readonly buffer BufK { float16_t K_[]; };
layout(binding = 2) readonly buffer BufV { float16_t V_[]; };
layout(binding = 3) writeonly buffer BufO { float O_[]; };
layout(binding = 4) readonly buffer BufM { float Mask_[]; };
layout(binding = 5) writeonly buffer BufL { float LSE_[]; };

layout(push_constant) uniform Push {
    uint Tq, Tk, H, Dh;
    uint offQ, offK, offV, offO, offM, offL;
    uint tokQ, tokK, tokV, tokO;
    uint batQ, batK, batV, batO;
    float scale;
    uint flags;     // 1: mask, 2: causal, 4: LSE
    uint tileBase;  // query tile of workgroup x = 0
    uint headBase;  // head of workgroup y = 0
} p;

#define TILE(T, R, C, U) coopmat<T, gl_ScopeWorkgroup, R, C, U>
#define SMAT TILE(float, BR, BC, gl_MatrixUseAccumulator)
#define OMAT TILE(float, BR, D, gl_MatrixUseAccumulator)
#define CLAMPED tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV>

uint i0, j0, mBase, lBase, b, h;

float maxOf(const in float x, const in float y) { return max(x, y); }
float sumOf(const in float x, const in float y) { return x + y; }

// scoreAt finishes score (r, c) of the tile: scale, mask, and -Inf for keys
// the query may not see (causal, or past Tk).
float scoreAt(const in uint32_t r, const in uint32_t c, const in float qk) {
    uint i = i0 + r, j = j0 + c;
    if (j >= p.Tk || (p.flags & 2u) != 0 && j + p.Tq > i + p.Tk) {
        return -BLIP_INF;
    }
    float s = p.scale * qk;
    if ((p.flags & 1u) != 0) {
        s += Mask_[mBase + j];
    }
    return s;
}

float maxElem(const in uint32_t r, const in uint32_t c, const in float x, const in float y) { return max(x, y); }

// probAt is exp(s - m), 0 where the key is removed (s = -Inf: m may be
// -Inf too).
float probAt(const in uint32_t r, const in uint32_t c, const in float s, const in float m) {
    return s == -BLIP_INF ? 0.0 : exp_acc(s - m);
}

// outAt is o / l, zeros for a row without keys (l = 0); with LSE, column 0
// also writes m + log l of its row.
float outAt(const in uint32_t r, const in uint32_t c, const in float o, const in float l, const in float m) {
    if (c == 0 && (p.flags & 4u) != 0 && i0 + r < p.Tq) {
        LSE_[lBase + i0 + r] = l > 0.0 ? m + log(l) : -BLIP_INF;
    }
    return l > 0.0 ? o / l : 0.0;
}

void main() {
    const uint tile = gl_WorkGroupID.x + p.tileBase;
    h = gl_WorkGroupID.y + p.headBase;
    b = gl_WorkGroupID.z;
    i0 = tile * BR;
    mBase = p.offM + b * p.Tk;
    lBase = p.offL + (b * p.H + h) * p.Tq;
    const uint qBase = p.offQ + b * p.batQ + h * p.Dh;
    const uint kBase = p.offK + b * p.batK + h * p.Dh;
    const uint vBase = p.offV + b * p.batV + h * p.Dh;
    const uint oBase = p.offO + b * p.batO + h * p.Dh;

    // Each operand as a (T, Dh) tensor of its head: rows tok apart.
    CLAMPED lq = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    CLAMPED lk = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    CLAMPED lv = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    CLAMPED lo = createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    lq = setTensorLayoutStrideNV(setTensorLayoutDimensionNV(lq, p.Tq, p.Dh), p.tokQ, 1);
    lk = setTensorLayoutStrideNV(setTensorLayoutDimensionNV(lk, p.Tk, p.Dh), p.tokK, 1);
    lv = setTensorLayoutStrideNV(setTensorLayoutDimensionNV(lv, p.Tk, p.Dh), p.tokV, 1);
    lo = setTensorLayoutStrideNV(setTensorLayoutDimensionNV(lo, p.Tq, p.Dh), p.tokO, 1);
    tensorViewNV<2, false, 1, 0> tr = createTensorViewNV(2, false, 1, 0);

    TILE(float16_t, BR, D, gl_MatrixUseA) q;
    coopMatLoadTensorNV(q, Q_, qBase, sliceTensorLayoutNV(lq, i0, BR, 0, D));

    // The keys any query of the tile sees: all, or with Causal up to the
    // last row's (i0 + BR - 1) + Tk - Tq.
    uint kEnd = p.Tk;
    if ((p.flags & 2u) != 0) {
        kEnd = uint(clamp(int(min(p.Tq, i0 + BR)) + int(p.Tk) - int(p.Tq), 0, int(p.Tk)));
    }

    // Pass 1: the row maxima.
    SMAT m = SMAT(-BLIP_INF);
    for (j0 = 0; j0 < kEnd; j0 += BC) {
        TILE(float16_t, D, BC, gl_MatrixUseB) kt;
        coopMatLoadTensorNV(kt, K_, kBase, sliceTensorLayoutNV(lk, j0, BC, 0, D), tr);
        SMAT s = coopMatMulAdd(q, kt, SMAT(0.0));
        coopMatPerElementNV(s, s, scoreAt);
        SMAT rowMax;
        coopMatReduceNV(rowMax, s, gl_CooperativeMatrixReduceRowNV, maxOf);
        coopMatPerElementNV(m, m, maxElem, rowMax);
    }

    // Pass 2: the probabilities, their sums and the weighted values.
    SMAT l = SMAT(0.0);
    OMAT o = OMAT(0.0);
    for (j0 = 0; j0 < kEnd; j0 += BC) {
        TILE(float16_t, D, BC, gl_MatrixUseB) kt;
        coopMatLoadTensorNV(kt, K_, kBase, sliceTensorLayoutNV(lk, j0, BC, 0, D), tr);
        SMAT s = coopMatMulAdd(q, kt, SMAT(0.0));
        coopMatPerElementNV(s, s, scoreAt);
        coopMatPerElementNV(s, s, probAt, m);
        l += s;
        TILE(float16_t, BR, BC, gl_MatrixUseA) ph = TILE(float16_t, BR, BC, gl_MatrixUseA)(s);
        TILE(float16_t, BC, D, gl_MatrixUseB) v;
        coopMatLoadTensorNV(v, V_, vBase, sliceTensorLayoutNV(lv, j0, BC, 0, D));
        o = coopMatMulAdd(ph, v, o);
    }

    // The row sums and maxima spread over O's columns, then O / l.
    OMAT lo2, mo;
    coopMatReduceNV(lo2, l, gl_CooperativeMatrixReduceRowNV, sumOf);
    coopMatReduceNV(mo, m, gl_CooperativeMatrixReduceRowNV, maxOf);
    coopMatPerElementNV(o, o, outAt, lo2, mo);
    coopMatStoreTensorNV(o, O_, oBase, sliceTensorLayoutNV(lo, i0, BR, 0, D));
}
