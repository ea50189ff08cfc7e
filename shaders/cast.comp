#version 450
// gpu.Cast: Y[i] = X[i] converted between f32, f16 and bf16. 16-bit values
// are moved as raw codes (uint16_t) and converted in integer arithmetic
// (half.glsl), so the result does not depend on the driver's float
// conversion or denormal handling.
#include "half.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint XT = 0; // DT_F32, DT_F16, DT_BF16
layout(constant_id = 2) const uint YT = 0;

layout(binding = 0) readonly buffer BufX { uint X_[]; };
layout(binding = 0) readonly buffer BufXh { uint16_t Xh_[]; };
layout(binding = 1) writeonly buffer BufY { uint Y_[]; };
layout(binding = 1) writeonly buffer BufYh { uint16_t Yh_[]; };

layout(push_constant) uniform Push {
    uint n;
    uint offX, offY;
} p;

void main() {
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i >= p.n) {
        return;
    }
    if (XT == YT) {
        // Same type: copy the bits (NaN payloads included).
        if (XT == DT_F32) {
            Y_[p.offY + i] = X_[p.offX + i];
        } else {
            Yh_[p.offY + i] = Xh_[p.offX + i];
        }
        return;
    }
    float v = XT == DT_F32 ? uintBitsToFloat(X_[p.offX + i]) : widen16(XT, uint(Xh_[p.offX + i]));
    if (YT == DT_F32) {
        Y_[p.offY + i] = floatBitsToUint(v);
    } else {
        Yh_[p.offY + i] = uint16_t(narrow16(YT, v));
    }
}
