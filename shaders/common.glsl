// Shared math for the blip compute shaders: an accurate fp32 exp, erf/erfc
// (for exact GELU) and tanh. GLSL has no erf, and the built-in exp and tanh
// may be only loosely accurate (exp: 3 + 2|x| ulp; tanh may overflow to NaN),
// so these are written out here. Polynomial coefficients were fitted for this
// project (least squares on Chebyshev nodes, checked in fp32 against float64).
#ifndef BLIP_COMMON_GLSL
#define BLIP_COMMON_GLSL

#define BLIP_INF uintBitsToFloat(0x7f800000u)

// isnan that no optimiser can fold away: it only looks at the bits.
bool nan_bits(float x) {
    return (floatBitsToUint(x) & 0x7fffffffu) > 0x7f800000u;
}

// exp to about 1 ulp: exp(x) = 2^k * exp(r), |r| <= ln2/2, with a two-part
// ln2 (Cody-Waite) and the degree-7 Taylor polynomial for exp(r).
float exp_acc(float x) {
    if (nan_bits(x)) {
        return x;
    }
    if (x > 88.72283f) {
        return BLIP_INF;
    }
    if (x < -87.33654f) {
        return 0.0f; // below the smallest normal float
    }
    float k = floor(x * 1.44269504f + 0.5f);
    float r = fma(k, -0.693145752f, x);   // ln2 high part (exact product)
    r = fma(k, -1.42860677e-6f, r);       // ln2 low part
    float p = 1.98412698e-4f;             // 1/7!
    p = fma(p, r, 1.38888889e-3f);        // 1/6!
    p = fma(p, r, 8.33333333e-3f);        // 1/5!
    p = fma(p, r, 4.16666667e-2f);        // 1/4!
    p = fma(p, r, 1.66666667e-1f);        // 1/3!
    p = fma(p, r, 0.5f);
    p = fma(p, r, 1.0f);
    p = fma(p, r, 1.0f);
    // 2^k in two normal halves, so k down to -126 and up to 128 works.
    int ki = int(k);
    int k1 = ki / 2;
    int k2 = ki - k1;
    float s1 = uintBitsToFloat(uint(k1 + 127) << 23);
    float s2 = uintBitsToFloat(uint(k2 + 127) << 23);
    return p * s1 * s2;
}

// erf(x)/x for |x| < 1.5 as a polynomial in u = x^2 * (2/2.25) - 1.
float erf_small_ratio(float s) {
    float u = fma(s, 0.888888889f, -1.0f);
    float p = 1.770334990e-08f;
    p = fma(p, u, -1.760192418e-07f);
    p = fma(p, u, 1.552460731e-06f);
    p = fma(p, u, -1.270344455e-05f);
    p = fma(p, u, 9.302950639e-05f);
    p = fma(p, u, -6.015948602e-04f);
    p = fma(p, u, 3.385064192e-03f);
    p = fma(p, u, -1.628751308e-02f);
    p = fma(p, u, 6.590879709e-02f);
    p = fma(p, u, -2.252525538e-01f);
    p = fma(p, u, 8.168361783e-01f);
    return p;
}

// erfc(t) for 1.5 <= t < 4: exp of a polynomial fitted to log erfc(t) in
// u = t * 0.8 - 2.2.
float erfc_mid(float t) {
    float u = fma(t, 0.8f, -2.2f);
    float q = -8.480955103e-07f;
    q = fma(q, u, 8.650472409e-06f);
    q = fma(q, u, -4.608627933e-05f);
    q = fma(q, u, 2.193352993e-04f);
    q = fma(q, u, -9.784542490e-04f);
    q = fma(q, u, 4.162785597e-03f);
    q = fma(q, u, -1.744776405e-02f);
    q = fma(q, u, -1.486385584e+00f);
    q = fma(q, u, -7.283169746e+00f);
    q = fma(q, u, -9.204140663e+00f);
    return exp_acc(q);
}

// erfc(t) for t >= 0 (absolute error below 1e-7; exactly 0 from t = 4 on,
// where erfc < 1.6e-8).
float erfc_pos(float t) {
    if (t < 1.5f) {
        return 1.0f - t * erf_small_ratio(t * t);
    }
    if (t < 4.0f) {
        return erfc_mid(t);
    }
    return 0.0f;
}

// erf(x), absolute error about 1e-7.
float erf_acc(float x) {
    float t = abs(x);
    float r;
    if (t < 1.5f) {
        r = t * erf_small_ratio(t * t);
    } else {
        r = 1.0f - erfc_pos(t);
    }
    return x < 0.0f ? -r : r;
}

// Exact GELU: x/2 * (1 + erf(x/sqrt 2)); for x < 0 through erfc so the tail
// keeps its relative accuracy.
float gelu_exact(float x) {
    float z = x * 0.707106781f;
    if (z >= 0.0f) {
        return 0.5f * x * (1.0f + erf_acc(z));
    }
    if (nan_bits(x)) {
        return x;
    }
    return 0.5f * x * erfc_pos(-z);
}

// tanh(x)/x for |x| < 0.625 in u = x^2 * 5.12 - 1.
float tanh_small_ratio(float s) {
    float u = fma(s, 5.12f, -1.0f);
    float p = 1.182558833e-07f;
    p = fma(p, u, -1.610025947e-06f);
    p = fma(p, u, 2.174314432e-05f);
    p = fma(p, u, -2.964827872e-04f);
    p = fma(p, u, 4.048424773e-03f);
    p = fma(p, u, -5.602212995e-02f);
    p = fma(p, u, 9.396094680e-01f);
    return p;
}

float tanh_acc(float x) {
    float t = abs(x);
    float r;
    if (t < 0.625f) {
        return x * tanh_small_ratio(x * x);
    }
    if (t < 9.5f) {
        float e = exp_acc(-2.0f * t);
        r = (1.0f - e) / (1.0f + e);
    } else {
        r = 1.0f; // also for +-Inf
    }
    if (nan_bits(x)) {
        return x;
    }
    return x < 0.0f ? -r : r;
}

// Epilogue activations, numbered as gpu.Act.
float apply_act(uint act, float v) {
    if (act == 1u) {
        return gelu_exact(v);
    }
    if (act == 2u) {
        return tanh_acc(v);
    }
    return v;
}

#endif
