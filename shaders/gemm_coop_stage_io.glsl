// One K step's fetch into registers and store into shared memory, for
// gemm_coop_stage.glsl, which includes it once per register set: RA4,
// RA1, RB4 and RB1 name the set's arrays, FETCH and STORE the functions.
void FETCH(uint k0) {
    if (vecA) {
        [[unroll]] for (uint l = 0; l < LA4; l++) {
            uint i = t + l * WG;
            uvec2 at = vecAt(i, BM, alongM);
            uint gm = m0 + at.x, gk = k0 + at.y;
            RA4[l] = vec4(0.0);
            if (i < TA4 && gm < p.M && gk < p.K) {
                RA4[l] = LDA4((aBase + gm * am + gk * ak) / 4);
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LA1; l++) {
            uint i = t + l * WG;
            uint gm = m0 + i / BK, gk = k0 + i % BK;
            if (am == 1u) {
                gm = m0 + i % BM;
                gk = k0 + i / BM;
            }
            RA1[l] = 0.0;
            if (i < TA1 && gm < p.M && gk < p.K) {
                RA1[l] = LDA(aBase + gm * am + gk * ak);
            }
        }
    }
    if (vecB) {
        [[unroll]] for (uint l = 0; l < LB4; l++) {
            uint i = t + l * WG;
            uvec2 at = vecAt(i, BN, alongN);
            uint gn = n0 + at.x, gk = k0 + at.y;
            RB4[l] = BTYPE4(0.0);
            if (i < TB4 && gn < p.N && gk < p.K) {
                RB4[l] = B4_[(bBase + gk * bk + gn * bn) / 4];
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LB1; l++) {
            uint i = t + l * WG;
            uint gn = n0 + i / BK, gk = k0 + i % BK;
            if (bn == 1u) {
                gn = n0 + i % BN;
                gk = k0 + i / BN;
            }
            RB1[l] = BTYPE(0.0);
            if (i < TB1 && gn < p.N && gk < p.K) {
                RB1[l] = B_[bBase + gk * bk + gn * bn];
            }
        }
    }
}

// STORE writes the fetched tiles as sA[m][k] and sB[n][k].
void STORE() {
    if (vecA) {
        const uint st = alongM ? SK : 1u; // between the vec4's values in sA
        [[unroll]] for (uint l = 0; l < LA4; l++) {
            uint i = t + l * WG;
            if (i < TA4) {
                uvec2 at = vecAt(i, BM, alongM);
                uint o = at.x * SK + at.y;
                sA[o] = toHalf(RA4[l].x);
                sA[o + st] = toHalf(RA4[l].y);
                sA[o + 2 * st] = toHalf(RA4[l].z);
                sA[o + 3 * st] = toHalf(RA4[l].w);
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LA1; l++) {
            uint i = t + l * WG;
            if (i < TA1) {
                uint o = am == 1u ? (i % BM) * SK + i / BM : (i / BK) * SK + i % BK;
                sA[o] = toHalf(RA1[l]);
            }
        }
    }
    if (vecB) {
        const uint st = alongN ? SK : 1u;
        [[unroll]] for (uint l = 0; l < LB4; l++) {
            uint i = t + l * WG;
            if (i < TB4) {
                uvec2 at = vecAt(i, BN, alongN);
                uint o = at.x * SK + at.y;
                sB[o] = toHalf(RB4[l].x);
                sB[o + st] = toHalf(RB4[l].y);
                sB[o + 2 * st] = toHalf(RB4[l].z);
                sB[o + 3 * st] = toHalf(RB4[l].w);
            }
        }
    } else {
        [[unroll]] for (uint l = 0; l < LB1; l++) {
            uint i = t + l * WG;
            if (i < TB1) {
                uint o = bn == 1u ? (i % BN) * SK + i / BN : (i / BK) * SK + i % BK;
                sB[o] = toHalf(RB1[l]);
            }
        }
    }
}

