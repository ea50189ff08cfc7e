#version 450
// gpu.Permute over a box of the output: for the element with box coordinates
// (o0, o1, o2, o3) (extents e0..e3, e0 implied by n),
//   Y[offY + sum oi*ys[i]] = X[offX + sum oi*xs[i]]
// where ys are the output strides and xs the input strides permuted to output
// order. 32-bit words are moved bit for bit, so f32 and i32 alike.
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer BufX { uint X_[]; };
layout(binding = 1) writeonly buffer BufY { uint Y_[]; };

layout(push_constant) uniform Push {
    uint n;
    uint e1, e2, e3;
    uint ys0, ys1, ys2, ys3;
    uint xs0, xs1, xs2, xs3;
    uint offX, offY;
} p;

void main() {
    uint g = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (g >= p.n) {
        return;
    }
    uint l = g;
    uint o3 = l % p.e3;
    l /= p.e3;
    uint o2 = l % p.e2;
    l /= p.e2;
    uint o1 = l % p.e1;
    uint o0 = l / p.e1;
    uint yi = o0 * p.ys0 + o1 * p.ys1 + o2 * p.ys2 + o3 * p.ys3;
    uint xi = o0 * p.xs0 + o1 * p.xs1 + o2 * p.xs2 + o3 * p.xs3;
    Y_[p.offY + yi] = X_[p.offX + xi];
}
