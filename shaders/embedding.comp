#version 450
// gpu.Embedding: Y[i, :] = Table[Ids[i] - lo, :] for ids in [lo, hi) (the rows
// of the table bound by this dispatch); with writeInvalid, ids outside
// [0, vocab) give zero rows. 32-bit words are copied bit for bit; with VEC
// four at a time (dim and both offsets multiples of 4).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint VEC = 0;

layout(binding = 0) readonly buffer BufT { uint T_[]; };
layout(binding = 0) readonly buffer BufT4 { uvec4 T4_[]; };
layout(binding = 1) readonly buffer BufIds { int Ids_[]; };
layout(binding = 2) writeonly buffer BufY { uint Y_[]; };
layout(binding = 2) writeonly buffer BufY4 { uvec4 Y4_[]; };

layout(push_constant) uniform Push {
    uint n, dim;
    uint offT, offIds, offY;
    int lo, hi, vocab;
    uint writeInvalid;
} p;

void main() {
    uint g = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    uint w = VEC != 0 ? p.dim / 4 : p.dim; // words (or vec4s) per row
    uint row = g / w;
    if (row >= p.n) {
        return;
    }
    uint col = g - row * w;
    int id = Ids_[p.offIds + row];
    bool here = id >= p.lo && id < p.hi;
    bool invalid = id < 0 || id >= p.vocab;
    if (!here && !(invalid && p.writeInvalid != 0)) {
        return;
    }
    if (VEC != 0) {
        uvec4 v = uvec4(0);
        if (here) {
            v = T4_[(p.offT + uint(id - p.lo) * p.dim) / 4 + col];
        }
        Y4_[(p.offY + row * p.dim) / 4 + col] = v;
    } else {
        uint v = 0;
        if (here) {
            v = T_[p.offT + uint(id - p.lo) * p.dim + col];
        }
        Y_[p.offY + row * p.dim + col] = v;
    }
}
