#version 450
// gpu.Binary: C[i] = A[i] op B[(phase + i) % bn] for i < n. BMODE 0: B has
// the same index as A (bn == n, phase 0); 1: B is a scalar; 2: general
// broadcast. With VEC each invocation handles four elements (offsets, and for
// BMODE 2 also bn and phase, multiples of 4).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;     // gpu.BinaryOp
layout(constant_id = 2) const uint VEC = 0;
layout(constant_id = 3) const uint BMODE = 0;

layout(binding = 0) readonly buffer BufA { float A_[]; };
layout(binding = 0) readonly buffer BufA4 { vec4 A4_[]; };
layout(binding = 1) readonly buffer BufB { float B_[]; };
layout(binding = 1) readonly buffer BufB4 { vec4 B4_[]; };
layout(binding = 2) writeonly buffer BufC { float C_[]; };
layout(binding = 2) writeonly buffer BufC4 { vec4 C4_[]; };

layout(push_constant) uniform Push {
    uint n, bn, phase;
    uint offA, offB, offC;
} p;

vec4 op(vec4 a, vec4 b) {
    if (OP == 0) return a + b;
    if (OP == 1) return a - b;
    if (OP == 2) return a * b;
    return a / b;
}

float op1(float a, float b) {
    if (OP == 0) return a + b;
    if (OP == 1) return a - b;
    if (OP == 2) return a * b;
    return a / b;
}

uint bidx(uint i) {
    if (BMODE == 0) return i;
    if (BMODE == 1) return 0;
    return (p.phase + i) % p.bn;
}

void main() {
    uint g = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (VEC != 0) {
        uint i = g * 4;
        if (i + 4 <= p.n) {
            vec4 a = A4_[(p.offA + i) >> 2];
            vec4 b;
            if (BMODE == 1) {
                b = vec4(B_[p.offB]);
            } else {
                b = B4_[(p.offB + bidx(i)) >> 2];
            }
            C4_[(p.offC + i) >> 2] = op(a, b);
        } else {
            for (; i < p.n; i++) {
                C_[p.offC + i] = op1(A_[p.offA + i], B_[p.offB + bidx(i)]);
            }
        }
    } else if (g < p.n) {
        C_[p.offC + g] = op1(A_[p.offA + g], B_[p.offB + bidx(g)]);
    }
}
