// The epilogue of every gemm shader: one element of
//   C = Beta*C + Act(Alpha * acc + Bias)
// for column gn at C element ci. The includer declares LDC (C's load),
// Bias_ and the push constants (gemm_push.glsl) first.
float epi(float a, uint gn, uint ci, bool hasBias, uint act) {
    float v = p.alpha * a;
    if (hasBias) {
        v += Bias_[p.offBias + gn];
    }
    v = apply_act(act, v);
    if (p.beta != 0.0) {
        v = fma(p.beta, LDC(ci), v);
    }
    return v;
}
