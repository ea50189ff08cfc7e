// gpu.Unary: Y[i] = op(X[i]) for i < n. Buffers are read as 32-bit words so
// that Copy moves i32 data (and any NaN payload) bit for bit. With VEC each
// invocation handles four elements (both offsets a multiple of 4).
// unary.comp writes 32-bit Y; unary_h.comp (HALF_Y) an f16 or bf16 one
// (16-bit activations), its type the specialization constant YT, rounded
// to nearest even.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // gpu.UnaryOp
layout(constant_id = 2) const uint VEC = 0;

layout(binding = 0) readonly buffer BufX { uint X_[]; };
layout(binding = 0) readonly buffer BufX4 { uvec4 X4_[]; };
#ifdef HALF_Y
#include "half.glsl"
layout(constant_id = 3) const uint YT = DT_F16;
layout(binding = 1) writeonly buffer BufY { uint16_t Y_[]; };
layout(binding = 1) writeonly buffer BufY4 { u16vec4 Y4_[]; };
#define NARROW(b) narrow16(YT, uintBitsToFloat(b))
#define STY(i, b) Y_[i] = uint16_t(NARROW(b))
#define STY4(i, b) Y4_[i] = u16vec4(uvec4(NARROW(b.x), NARROW(b.y), NARROW(b.z), NARROW(b.w)))
#else
layout(binding = 1) writeonly buffer BufY { uint Y_[]; };
layout(binding = 1) writeonly buffer BufY4 { uvec4 Y4_[]; };
#define STY(i, b) Y_[i] = (b)
#define STY4(i, b) Y4_[i] = (b)
#endif

layout(push_constant) uniform Push {
    uint n;
    uint offX, offY;
    float alpha;
} p;

uint f(uint xb) {
    if (OP == 0) {
        return xb;
    }
    float x = uintBitsToFloat(xb);
    float y;
    if (OP == 1) {
        y = p.alpha * x;
    } else if (OP == 2) {
        y = gelu_exact(x);
    } else if (OP == 3) {
        y = tanh_acc(x);
    } else {
        y = exp_acc(x);
    }
    return floatBitsToUint(y);
}

void main() {
    uint g = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (VEC != 0) {
        uint i = g * 4;
        if (i + 4 <= p.n) {
            uvec4 x = X4_[(p.offX + i) >> 2];
            uvec4 y = uvec4(f(x.x), f(x.y), f(x.z), f(x.w));
            STY4((p.offY + i) >> 2, y);
        } else {
            for (; i < p.n; i++) {
                STY(p.offY + i, f(X_[p.offX + i]));
            }
        }
    } else if (g < p.n) {
        STY(p.offY + g, f(X_[p.offX + g]));
    }
}
