#version 450
// gpu.Copy2D: Y[r*ldy + c] = X[r*ldx + c] for r < rows, c < cols, one
// invocation per element. 32-bit words are copied bit for bit; with ACC the
// f32 values are added to Y.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 64;
layout(constant_id = 1) const uint ACC = 0;

layout(binding = 0) readonly buffer BufX { uint X_[]; };
layout(binding = 1) buffer BufY { uint Y_[]; };

layout(push_constant) uniform Push {
    uint rows, cols, ldx, ldy;
    uint offX, offY;
} p;

void main() {
    uint g = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * NT + gl_LocalInvocationID.x;
    if (g >= p.rows * p.cols) {
        return;
    }
    uint r = g / p.cols;
    uint c = g - r * p.cols;
    uint x = X_[p.offX + r * p.ldx + c];
    uint o = p.offY + r * p.ldy + c;
    if (ACC != 0) {
        Y_[o] = floatBitsToUint(uintBitsToFloat(Y_[o]) + uintBitsToFloat(x));
    } else {
        Y_[o] = x;
    }
}
