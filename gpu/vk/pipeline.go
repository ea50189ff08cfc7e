package vk

import (
	"fmt"
	"strings"

	vk "github.com/vulkan-go/vulkan"

	"blip/shaders"
)

const (
	// maxBindings is the most storage buffers a shader binds (gemm_rows_ln:
	// ten); shaders of more than minBindings run only on devices whose
	// maxPerStageDescriptorStorageBuffers allows them (Device.maxBinds).
	maxBindings = 10
	minBindings = 8
	pushBytes   = 128 // the minimum every device guarantees
)

type pipeKey struct {
	shader string
	nbind  int
	spec   string // spec constants as raw bytes
}

type pipeline struct {
	h      vk.Pipeline
	layout vk.PipelineLayout
	nbind  int
}

// pipelines caches shader modules, layouts (one per binding count) and
// pipelines keyed by shader and specialization constants.
type pipelines struct {
	cache      vk.PipelineCache
	modules    map[string]vk.ShaderModule
	setLayouts [maxBindings + 1]vk.DescriptorSetLayout
	layouts    [maxBindings + 1]vk.PipelineLayout
	byKey      map[pipeKey]*pipeline
}

func (p *pipelines) init(d *Device) error {
	p.modules = map[string]vk.ShaderModule{}
	p.byKey = map[pipeKey]*pipeline{}
	ci := vk.PipelineCacheCreateInfo{SType: vk.StructureTypePipelineCacheCreateInfo}
	// Handles are returned through locals: vulkan-go passes the out pointer
	// to C, and a pointer into a struct holding Go pointers fails cgocheck.
	var cache vk.PipelineCache
	if err := check("vkCreatePipelineCache", vk.CreatePipelineCache(d.dev, &ci, nil, &cache)); err != nil {
		return err
	}
	p.cache = cache
	for n := 1; n <= d.maxBinds; n++ {
		binds := make([]vk.DescriptorSetLayoutBinding, n)
		for i := range binds {
			binds[i] = vk.DescriptorSetLayoutBinding{
				Binding:         uint32(i),
				DescriptorType:  vk.DescriptorTypeStorageBuffer,
				DescriptorCount: 1,
				StageFlags:      vk.ShaderStageFlags(vk.ShaderStageComputeBit),
			}
		}
		li := vk.DescriptorSetLayoutCreateInfo{
			SType:        vk.StructureTypeDescriptorSetLayoutCreateInfo,
			BindingCount: uint32(n),
			PBindings:    binds,
		}
		var sl vk.DescriptorSetLayout
		var r vk.Result
		withoutGC(func() { r = vk.CreateDescriptorSetLayout(d.dev, &li, nil, &sl) })
		if err := check("vkCreateDescriptorSetLayout", r); err != nil {
			return err
		}
		p.setLayouts[n] = sl
		pli := vk.PipelineLayoutCreateInfo{
			SType:                  vk.StructureTypePipelineLayoutCreateInfo,
			SetLayoutCount:         1,
			PSetLayouts:            []vk.DescriptorSetLayout{p.setLayouts[n]},
			PushConstantRangeCount: 1,
			PPushConstantRanges: []vk.PushConstantRange{{
				StageFlags: vk.ShaderStageFlags(vk.ShaderStageComputeBit),
				Size:       pushBytes,
			}},
		}
		var pl vk.PipelineLayout
		withoutGC(func() { r = vk.CreatePipelineLayout(d.dev, &pli, nil, &pl) })
		if err := check("vkCreatePipelineLayout", r); err != nil {
			return err
		}
		p.layouts[n] = pl
	}
	return nil
}

func (p *pipelines) module(d *Device, name string) (vk.ShaderModule, error) {
	strip := d.roundsInShader() && strings.Contains(name, "_coop")
	key := name
	if strip {
		key += "#sw"
	}
	if m, ok := p.modules[key]; ok {
		return m, nil
	}
	code, err := shaders.SPIRV(name)
	if err != nil {
		return nil, err
	}
	if strip {
		code = stripRTE(code) // rounding.go
	}
	ci := vk.ShaderModuleCreateInfo{
		SType:    vk.StructureTypeShaderModuleCreateInfo,
		CodeSize: uint(len(code) * 4),
		PCode:    code,
	}
	var m vk.ShaderModule
	if err := check("vkCreateShaderModule("+name+")", vk.CreateShaderModule(d.dev, &ci, nil, &m)); err != nil {
		return nil, err
	}
	p.modules[key] = m
	return m, nil
}

func specBytes(spec []uint32) string {
	b := make([]byte, 4*len(spec))
	for i, v := range spec {
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	return string(b)
}

// get returns the pipeline for a shader, binding count and specialization.
func (p *pipelines) get(d *Device, shader string, nbind int, spec []uint32) (*pipeline, error) {
	if nbind < 1 || nbind > d.maxBinds {
		return nil, fmt.Errorf("%s: %d bindings (1..%d supported on %s)", shader, nbind, d.maxBinds, d.Name())
	}
	key := pipeKey{shader, nbind, specBytes(spec)}
	if pl, ok := p.byKey[key]; ok {
		return pl, nil
	}
	m, err := p.module(d, shader)
	if err != nil {
		return nil, err
	}
	stage := vk.PipelineShaderStageCreateInfo{
		SType:  vk.StructureTypePipelineShaderStageCreateInfo,
		Stage:  vk.ShaderStageComputeBit,
		Module: m,
		PName:  cstr("main"),
	}
	if req := d.subgroupRequirement(shader); req != nil {
		defer cFree(req)
		stage.PNext = req
		stage.Flags = vk.PipelineShaderStageCreateFlags(pipelineStageRequireFullSubgroups)
	}
	var data []uint32
	if len(spec) > 0 {
		entries := make([]vk.SpecializationMapEntry, len(spec))
		for i := range spec {
			entries[i] = vk.SpecializationMapEntry{ConstantID: uint32(i), Offset: uint32(4 * i), Size: 4}
		}
		data = append([]uint32(nil), spec...)
		mem := cAlloc(4 * len(data))
		defer cFree(mem)
		copy(cWords(mem, len(data)), data)
		stage.PSpecializationInfo = []vk.SpecializationInfo{{
			MapEntryCount: uint32(len(entries)),
			PMapEntries:   entries,
			DataSize:      uint(4 * len(data)),
			PData:         mem,
		}}
	}
	ci := []vk.ComputePipelineCreateInfo{{
		SType:  vk.StructureTypeComputePipelineCreateInfo,
		Stage:  stage,
		Layout: p.layouts[nbind],
	}}
	out := make([]vk.Pipeline, 1)
	var r vk.Result
	withoutGC(func() { r = vk.CreateComputePipelines(d.dev, p.cache, 1, ci, nil, out) })
	if err := check(fmt.Sprintf("vkCreateComputePipelines(%s, spec %v)", shader, spec), r); err != nil {
		return nil, err
	}
	pl := &pipeline{h: out[0], layout: p.layouts[nbind], nbind: nbind}
	p.byKey[key] = pl
	return pl, nil
}

func (p *pipelines) destroy(d *Device) {
	for _, pl := range p.byKey {
		vk.DestroyPipeline(d.dev, pl.h, nil)
	}
	for _, m := range p.modules {
		vk.DestroyShaderModule(d.dev, m, nil)
	}
	for n := 1; n <= maxBindings; n++ {
		if p.layouts[n] != vk.NullPipelineLayout {
			vk.DestroyPipelineLayout(d.dev, p.layouts[n], nil)
		}
		if p.setLayouts[n] != vk.NullDescriptorSetLayout {
			vk.DestroyDescriptorSetLayout(d.dev, p.setLayouts[n], nil)
		}
	}
	if p.cache != vk.NullPipelineCache {
		vk.DestroyPipelineCache(d.dev, p.cache, nil)
	}
}
