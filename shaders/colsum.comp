#version 450
// gpu.ColumnSum, and the second stage of every two-stage column reduction.
// Workgroup g takes the column tile g % tiles of row block part = g / tiles:
// each invocation sums its column over the rows [part*block, part*block +
// block) of X (row stride ldx) in row order and writes the sum to row part
// of Y (row stride ldy), adding it to what Y holds with acc. The result
// depends only on block, not on the workgroup size.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint NT = 64;

layout(binding = 0) readonly buffer BufX { float X_[]; };
layout(binding = 1) buffer BufY { float Y_[]; };

layout(push_constant) uniform Push {
    uint rows, cols, block, ldx, ldy;
    uint offX, offY;
    uint acc;
} p;

void main() {
    uint g = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint tiles = (p.cols + NT - 1) / NT;
    uint part = g / tiles;
    uint c = (g - part * tiles) * NT + gl_LocalInvocationID.x;
    uint r0 = part * p.block;
    if (c >= p.cols || r0 >= p.rows) {
        return;
    }
    uint r1 = min(p.rows, r0 + p.block);
    float s = 0.0;
    for (uint r = r0; r < r1; r++) {
        s += X_[p.offX + r * p.ldx + c];
    }
    uint o = p.offY + part * p.ldy + c;
    Y_[o] = p.acc != 0 ? Y_[o] + s : s;
}
