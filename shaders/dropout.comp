#version 450
// gpu.Dropout: invocation g handles elements 4g..4g+3 with the four words of
// Philox4x32-10 at counter ctr + g (64-bit, ctr = the index of this
// dispatch's first element / 4) under key (k0, k1): element 4g+j is dropped
// (0) when word j < thr, else multiplied by scale. With COPY (P = 0) the
// words are copied bit for bit. With SEEDBUF the key is read from S_ at
// offS (gpu.Dropout.Seeds: written per run, so a recorded call list can be
// replayed with new masks).
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 64;
layout(constant_id = 1) const uint COPY = 0;
layout(constant_id = 2) const uint SEEDBUF = 0;

layout(binding = 0) readonly buffer BufX { uint X_[]; };
layout(binding = 1) writeonly buffer BufY { uint Y_[]; };
layout(binding = 2) readonly buffer BufS { uint S_[]; };

layout(push_constant) uniform Push {
    uint n;
    uint offX, offY;
    uint ctrLo, ctrHi, k0, k1, thr;
    float scale;
    uint offS;
} p;

uvec4 philox(uvec2 ctr, uvec2 key) {
    uvec4 c = uvec4(ctr.x, ctr.y, 0u, 0u);
    for (int i = 0; i < 10; i++) {
        uint hi0, lo0, hi1, lo1;
        umulExtended(0xD2511F53u, c.x, hi0, lo0);
        umulExtended(0xCD9E8D57u, c.z, hi1, lo1);
        c = uvec4(hi1 ^ c.y ^ key.x, lo1, hi0 ^ c.w ^ key.y, lo0);
        key += uvec2(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

void main() {
    uint g = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * NT + gl_LocalInvocationID.x;
    uint i0 = g * 4u;
    if (i0 >= p.n) {
        return;
    }
    uint m = min(4u, p.n - i0);
    if (COPY != 0) {
        for (uint j = 0; j < m; j++) {
            Y_[p.offY + i0 + j] = X_[p.offX + i0 + j];
        }
        return;
    }
    uint lo = p.ctrLo + g;
    uint hi = p.ctrHi + (lo < g ? 1u : 0u);
    uvec2 key = SEEDBUF != 0 ? uvec2(S_[p.offS], S_[p.offS + 1u]) : uvec2(p.k0, p.k1);
    uvec4 r = philox(uvec2(lo, hi), key);
    for (uint j = 0; j < m; j++) {
        uint y = 0u;
        if (r[j] >= p.thr) {
            y = floatBitsToUint(uintBitsToFloat(X_[p.offX + i0 + j]) * p.scale);
        }
        Y_[p.offY + i0 + j] = y;
    }
}
