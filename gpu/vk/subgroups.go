package vk

import (
	"strings"
	"unsafe"
)

// The tensor-core shaders (gemm_coop.glsl, attention_coop.glsl,
// attention_coop_bwd.glsl) lay their work out by subgroup: a workgroup of
// WG = 4 (or 8) times the device's subgroup size is taken to be that many
// subgroups, gl_SubgroupID picking a subgroup's rows, and some loops give
// each invocation WG / 4 elements of its subgroup's tile. A driver free to
// compile a compute shader for another subgroup width (Intel's SIMD8, 16
// or 32; AMD's wave32 or wave64) or to launch partial subgroups would
// break that layout. Where the device has VK_EXT_subgroup_size_control
// with computeFullSubgroups and the reported size lies in the compute
// stage's range, the tensor-core pipelines require exactly that size with
// full subgroups; elsewhere they rely on the reported size, as every
// pipeline did before (NVIDIA's is fixed at 32).

// pipelineStageRequireFullSubgroups is
// VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT.
const pipelineStageRequireFullSubgroups = 0x2

// subgroupRequirement returns, for a tensor-core shader on a device that
// pins their subgroup size, a VkPipelineShaderStageRequiredSubgroupSize-
// CreateInfo in C memory (the caller frees it), else nil.
func (d *Device) subgroupRequirement(shader string) unsafe.Pointer {
	if !d.pinSubgroup || !strings.Contains(shader, "_coop") {
		return nil
	}
	req := cAlloc(24)
	put32(req, 0, stSGSizeStage)
	put32(req, 16, uint32(d.info.SubgroupSize)) // requiredSubgroupSize
	return req
}
