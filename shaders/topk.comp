#version 450
// gpu.TopK: the K largest values of each row in descending order, ties by
// lower index, NaNs after every number. One workgroup per row.
//
// Elements are dealt to L leaves (element e to leaf e % L); each leaf holds
// its best element not yet taken, and a tournament tree over the leaves in
// shared memory gives the overall best at its root. Each of the K rounds
// takes the root; only the leaf it came from changes (it rescans its
// elements for the best one ranked below the taken one), so one invocation
// updates that leaf and its path to the root without further barriers.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 256;
layout(constant_id = 1) const uint L = 1024; // leaves, a power of 2
#include "common.glsl"

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) writeonly buffer BufV { float V_[]; };
layout(binding = 2) writeonly buffer BufI { int I_[]; };

layout(push_constant) uniform Push {
    uint rows, cols, k;
    uint offX, offV, offI;
} p;

const uint NONE = 0xffffffffu;

shared float tv[2 * L];
shared uint ti[2 * L];

// Whether (av, ai) ranks before (bv, bi): larger value first, NaN last, then
// lower index; NONE ranks after everything.
bool before(float av, uint ai, float bv, uint bi) {
    if (ai == NONE) return false;
    if (bi == NONE) return true;
    bool an = nan_bits(av), bn = nan_bits(bv);
    if (an != bn) return bn;
    if (!an && av != bv) return av > bv;
    return ai < bi;
}

uint xb;

// The best element of leaf j that ranks after (wv, wi) (all of them when wi
// is NONE... which never ranks before anything, so pass the flag separately).
void scan(uint j, bool bounded, float wv, uint wi, out float ov, out uint oi) {
    float bv = 0.0;
    uint bi = NONE;
    for (uint e = j; e < p.cols; e += L) {
        float v = X_[xb + e];
        if ((!bounded || before(wv, wi, v, e)) && before(v, e, bv, bi)) {
            bv = v;
            bi = e;
        }
    }
    ov = bv;
    oi = bi;
}

void main() {
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= p.rows) {
        return;
    }
    xb = p.offX + row * p.cols;
    uint t = gl_LocalInvocationID.x;

    for (uint j = t; j < L; j += NT) {
        float v;
        uint i;
        scan(j, false, 0.0, NONE, v, i);
        tv[L + j] = v;
        ti[L + j] = i;
    }
    barrier();
    for (uint lvl = L / 2; lvl >= 1; lvl /= 2) {
        for (uint nd = lvl + t; nd < 2 * lvl; nd += NT) {
            uint a = 2 * nd, b = 2 * nd + 1;
            bool left = before(tv[a], ti[a], tv[b], ti[b]) || ti[b] == NONE;
            tv[nd] = left ? tv[a] : tv[b];
            ti[nd] = left ? ti[a] : ti[b];
        }
        barrier();
    }
    if (t != 0) {
        return;
    }
    uint ob = row * p.k;
    for (uint r = 0; r < p.k; r++) {
        float wv = tv[1];
        uint wi = ti[1];
        V_[p.offV + ob + r] = wv;
        I_[p.offI + ob + r] = int(wi);
        uint j = wi % L;
        float nv;
        uint ni;
        scan(j, true, wv, wi, nv, ni);
        uint nd = L + j;
        tv[nd] = nv;
        ti[nd] = ni;
        while (nd > 1) {
            nd /= 2;
            uint a = 2 * nd, b = 2 * nd + 1;
            bool left = before(tv[a], ti[a], tv[b], ti[b]) || ti[b] == NONE;
            tv[nd] = left ? tv[a] : tv[b];
            ti[nd] = left ? ti[a] : ti[b];
        }
    }
}
