// The push constants of every gpu.Gemm shader (gemm.glsl, gemm_cpu.glsl,
// gemm_coop.comp), in the order gpu/vk/gemm.go writes them.
layout(push_constant) uniform Push {
    uint M, N, K;
    uint lda, ldb, ldc;
    uint offA, offB, offC, offBias;
    uint strideA, strideB, strideC;
    float alpha, beta;
    uint flags; // bit 0: bias; bits 1..2: activation (gpu.Act); gemm_coop: bit 3 TransA, bit 4 TransB,
                // bits 5, 6 vec4 staging of A, B, bits 7, 8 that vec4 along m, n
#ifdef SEGS
    // gemm_rows with SEGS: the number of products, and the second's and
    // third's B, C and Bias offsets, C row strides and C batch strides.
    uint nseg, offB1, offB2, offC1, offC2, offBias1, offBias2, ldc1, ldc2, strideC1, strideC2;
#endif
#ifdef NORM
    // gemm_rows with NORM: the LayerNorm's views and flags (bit 0: O set,
    // bit 1: write S, bit 2: a counter per row block), its eps, and the
    // counters' offset.
    uint offO, offG, offBt, offY, offS, nflags;
    float eps;
    uint offCnt;
#endif
} p;
