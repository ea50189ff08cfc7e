#version 450
// gpu.AdamW: one step per element, in place. decay = 1 - lr*wd, step =
// lr/bc1, bc2sqrt = sqrt(bc2) and gscale come from gpu.AdamW.Scalars.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 64;

layout(binding = 0) buffer BufP { float P_[]; };
layout(binding = 1) readonly buffer BufG { float G_[]; };
layout(binding = 2) buffer BufM { float M_[]; };
layout(binding = 3) buffer BufV { float V_[]; };

layout(push_constant) uniform Push {
    uint n;
    uint offP, offG, offM, offV;
    float beta1, beta2, eps, decay, step, bc2sqrt, gscale;
} p;

void main() {
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * NT + gl_LocalInvocationID.x;
    if (i >= p.n) {
        return;
    }
    float g = G_[p.offG + i] * p.gscale;
    float m = fma(p.beta1, M_[p.offM + i], (1.0 - p.beta1) * g);
    float v = fma(p.beta2, V_[p.offV + i], (1.0 - p.beta2) * g * g);
    M_[p.offM + i] = m;
    V_[p.offV + i] = v;
    float w = P_[p.offP + i] * p.decay;
    P_[p.offP + i] = w - p.step * (m / (sqrt(v) / p.bc2sqrt + p.eps));
}
