#version 450
// gpu.EmbeddingBackward: T[Ids[i] - lo, :] += DY[i, :] for i = 0..n-1 in
// order, for the ids in [lo, hi) (the rows of the table bound by this
// dispatch). Table rows are spread over `buckets` groups by id % buckets:
// workgroup g takes the column tile g % tiles of bucket g / tiles and scans
// all ids in order, adding the rows of its bucket. Each table element is
// updated by one invocation, in the order of i, so the sums are exactly
// those of a sequential loop whatever the bucket count or workgroup size.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 64;

layout(binding = 0) readonly buffer BufDY { float DY_[]; };
layout(binding = 1) readonly buffer BufIds { int Ids_[]; };
layout(binding = 2) buffer BufT { float T_[]; };

layout(push_constant) uniform Push {
    uint n, dim;
    uint offDY, offIds, offT;
    int lo, hi;
    uint buckets;
} p;

void main() {
    uint g = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint tiles = (p.dim + NT - 1) / NT;
    uint b = g / tiles;
    uint c = (g - b * tiles) * NT + gl_LocalInvocationID.x;
    if (c >= p.dim || b >= p.buckets) {
        return;
    }
    for (uint i = 0; i < p.n; i++) {
        int id = Ids_[p.offIds + i];
        if (id < p.lo || id >= p.hi || uint(id) % p.buckets != b) {
            continue;
        }
        uint o = p.offT + uint(id - p.lo) * p.dim + c;
        T_[o] = T_[o] + DY_[p.offDY + i * p.dim + c];
    }
}
