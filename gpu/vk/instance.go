package vk

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"

	"blip/gpu"
)

const validationLayer = "VK_LAYER_KHRONOS_validation"

// instance is a VkInstance plus what blip learned about its devices.
type instance struct {
	h        vk.Instance
	validate bool
	debugCB  vk.DebugReportCallback
	userData unsafe.Pointer // C memory holding this instance's id for debugCallback
	mu       sync.Mutex
	messages []string // validation messages not yet reported
	physical []vk.PhysicalDevice
	// apiVersion is the Vulkan version the instance asked for: 1.1, or
	// 1.3 where gemm_cm2 (SPIR-V 1.6) may run (BLIP_COOPMAT2=1).
	apiVersion uint32
}

func instanceLayers() map[string]bool {
	var n uint32
	vk.EnumerateInstanceLayerProperties(&n, nil)
	props := make([]vk.LayerProperties, n)
	vk.EnumerateInstanceLayerProperties(&n, props)
	out := map[string]bool{}
	for i := range props {
		props[i].Deref()
		out[vk.ToString(props[i].LayerName[:])] = true
	}
	return out
}

func instanceExtensions() map[string]bool {
	var n uint32
	vk.EnumerateInstanceExtensionProperties("", &n, nil)
	props := make([]vk.ExtensionProperties, n)
	vk.EnumerateInstanceExtensionProperties("", &n, props)
	out := map[string]bool{}
	for i := range props {
		props[i].Deref()
		out[vk.ToString(props[i].ExtensionName[:])] = true
	}
	return out
}

func newInstance(validate bool) (*instance, error) {
	if err := load(); err != nil {
		return nil, err
	}
	api := vk.MakeVersion(1, 1, 0)
	if coop2Env == "1" {
		api = vk.MakeVersion(1, 3, 0) // gemm_cm2's SPIR-V 1.6
	}
	app := vk.ApplicationInfo{
		SType:            vk.StructureTypeApplicationInfo,
		PApplicationName: cstr("blip"),
		PEngineName:      cstr("blip"),
		ApiVersion:       api,
	}
	var layers, exts []string
	if exts0 := instanceExtensions(); exts0["VK_KHR_portability_enumeration"] {
		// Harmless where unused; lets portability drivers show up.
		exts = append(exts, cstr("VK_KHR_portability_enumeration"))
	}
	if validate {
		if !instanceLayers()[validationLayer] {
			return nil, fmt.Errorf("vkCreateInstance: %s requested but not installed (apt-get install vulkan-validationlayers)", validationLayer)
		}
		layers = append(layers, cstr(validationLayer))
		exts = append(exts, cstr("VK_EXT_debug_report"))
	}
	info := vk.InstanceCreateInfo{
		SType:                   vk.StructureTypeInstanceCreateInfo,
		PApplicationInfo:        &app,
		EnabledLayerCount:       uint32(len(layers)),
		PpEnabledLayerNames:     layers,
		EnabledExtensionCount:   uint32(len(exts)),
		PpEnabledExtensionNames: exts,
	}
	if len(exts) > 0 && exts[0] == cstr("VK_KHR_portability_enumeration") {
		info.Flags = 0x00000001 // VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR
	}
	var h vk.Instance
	r := vk.CreateInstance(&info, nil, &h)
	if r == vk.ErrorIncompatibleDriver && api != vk.MakeVersion(1, 1, 0) {
		// A loader older than 1.3 (no gemm_cm2 then).
		api = vk.MakeVersion(1, 1, 0)
		app.ApiVersion = api
		r = vk.CreateInstance(&info, nil, &h)
	}
	if err := check("vkCreateInstance", r); err != nil {
		return nil, err
	}
	if err := vk.InitInstance(h); err != nil {
		vk.DestroyInstance(h, nil)
		return nil, fmt.Errorf("vkGetInstanceProcAddr: %w", err)
	}
	in := &instance{h: h, validate: validate, apiVersion: api}
	if validate {
		in.userData = cAlloc(8)
		*(*uint64)(in.userData) = registerInstance(in)
		cb := vk.DebugReportCallbackCreateInfo{
			SType:       vk.StructureTypeDebugReportCallbackCreateInfo,
			Flags:       vk.DebugReportFlags(vk.DebugReportErrorBit | vk.DebugReportWarningBit),
			PfnCallback: debugCallback,
			PUserData:   in.userData,
		}
		var dcb vk.DebugReportCallback
		if err := check("vkCreateDebugReportCallbackEXT", vk.CreateDebugReportCallback(h, &cb, nil, &dcb)); err != nil {
			vk.DestroyInstance(h, nil)
			return nil, err
		}
		in.debugCB = dcb
	}
	var n uint32
	if err := check("vkEnumeratePhysicalDevices", vk.EnumeratePhysicalDevices(h, &n, nil)); err != nil {
		in.destroy()
		return nil, err
	}
	in.physical = make([]vk.PhysicalDevice, n)
	if n > 0 {
		if err := check("vkEnumeratePhysicalDevices", vk.EnumeratePhysicalDevices(h, &n, in.physical)); err != nil {
			in.destroy()
			return nil, err
		}
	}
	return in, nil
}

// takeMessages returns the validation messages since the last call as one
// error, or nil.
func (in *instance) takeMessages() error {
	if in == nil || !in.validate {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.messages) == 0 {
		return nil
	}
	msgs := in.messages
	in.messages = nil
	if len(msgs) > 5 {
		msgs = append(msgs[:5], fmt.Sprintf("... and %d more", len(msgs)-5))
	}
	return fmt.Errorf("vulkan validation: %s", strings.Join(msgs, "; "))
}

func (in *instance) destroy() {
	if in.validate && in.debugCB != vk.NullDebugReportCallback {
		vk.DestroyDebugReportCallback(in.h, in.debugCB, nil)
	}
	vk.DestroyInstance(in.h, nil)
	if in.userData != nil {
		liveMu.Lock()
		delete(live, *(*uint64)(in.userData))
		liveMu.Unlock()
		cFree(in.userData)
		in.userData = nil
	}
}

// vulkan-go keeps one Go callback for the whole process (the first one
// registered), so every instance registers the same function and tells it
// apart by the id its user data points to.
var (
	liveMu sync.Mutex
	live   = map[uint64]*instance{}
	nextID uint64
)

func registerInstance(in *instance) uint64 {
	liveMu.Lock()
	defer liveMu.Unlock()
	nextID++
	live[nextID] = in
	return nextID
}

func debugCallback(_ vk.DebugReportFlags, _ vk.DebugReportObjectType, _ uint64, _ uint, code int32, prefix, msg string, user unsafe.Pointer) vk.Bool32 {
	if user == nil {
		return vk.False
	}
	liveMu.Lock()
	in := live[*(*uint64)(user)]
	liveMu.Unlock()
	if in != nil {
		in.mu.Lock()
		in.messages = append(in.messages, fmt.Sprintf("[%s %d] %s", prefix, code, strings.TrimSpace(msg)))
		in.mu.Unlock()
	}
	return vk.False
}

// physInfo is what blip knows about one physical device.
type physInfo struct {
	info        gpu.DeviceInfo
	props       vk.PhysicalDeviceProperties
	limits      vk.PhysicalDeviceLimits
	mem         vk.PhysicalDeviceMemoryProperties
	exts        map[string]bool
	queueFamily uint32
	tsBits      uint32
	apiVersion  uint32
	coopNV      bool // gemm_coop.comp can run (features present)
	coopKHR     int  // fragment size (16 or 8) of a KHR gemm_coop the device runs, or 0
	// rte16: the device takes the RoundingModeRTE execution mode for
	// 16-bit results (shaderRoundingModeRTEFloat16, with
	// VK_KHR_shader_float_controls), which the cooperative-matrix shaders
	// declare: their f32 -> f16 conversions are gpu.Round(F16, x).
	rte16 bool
	// cm2: what gemm_cm2 may use of VK_NV_cooperative_matrix2, or nil
	// where the device lacks it, its features, the KHR 16 x 16 x 16 path
	// it builds on, or Vulkan 1.3 (instance and device).
	cm2 *cm2Caps
	// pinSubgroup: the tensor-core pipelines can require subgroups of
	// exactly info.SubgroupSize, all full (VK_EXT_subgroup_size_control
	// with computeFullSubgroups, that size within the compute stage's
	// range, eight subgroups to a workgroup allowed); see subgroups.go.
	pinSubgroup bool
}

func deviceExtensions(pd vk.PhysicalDevice) map[string]bool {
	var n uint32
	vk.EnumerateDeviceExtensionProperties(pd, "", &n, nil)
	props := make([]vk.ExtensionProperties, n)
	vk.EnumerateDeviceExtensionProperties(pd, "", &n, props)
	out := map[string]bool{}
	for i := range props {
		props[i].Deref()
		out[vk.ToString(props[i].ExtensionName[:])] = true
	}
	return out
}

// Structure types newer than vulkan-go's 1.1 headers, and byte offsets in
// the C structs (x86-64 / aarch64 LP64 layout: sType at 0, pNext at 8).
const (
	stProps2          = 1000059001
	stFeatures2       = 1000059000
	stMemProps2       = 1000059006
	stSubgroupProps   = 1000094000
	stDriverProps     = 1000196000
	stFloatControls   = 1000197000 // VkPhysicalDeviceFloatControlsProperties
	stStorage16       = 1000083000
	stFloat16Int8     = 1000082000
	stMemBudget       = 1000237000
	stMemoryModel     = 1000211000 // VkPhysicalDeviceVulkanMemoryModelFeatures
	stCoopMatNV       = 1000249000 // VkPhysicalDeviceCooperativeMatrixFeaturesNV
	stCoopMatKHR      = 1000506000 // VkPhysicalDeviceCooperativeMatrixFeaturesKHR
	stCoopPropsKHR    = 1000506001 // VkCooperativeMatrixPropertiesKHR
	stSGSizeProps     = 1000225000 // VkPhysicalDeviceSubgroupSizeControlProperties
	stSGSizeStage     = 1000225001 // VkPipelineShaderStageRequiredSubgroupSizeCreateInfo
	stSGSizeFeatures  = 1000225002 // VkPhysicalDeviceSubgroupSizeControlFeatures
	stSMBuiltinsNV    = 1000154001 // VkPhysicalDeviceShaderSMBuiltinsPropertiesNV
	stCoreAMD         = 1000185000 // VkPhysicalDeviceShaderCorePropertiesAMD
	sizeCoreAMD       = 16 + 14*4
	sizeCoopPropsKHR  = 56
	sizeProps2        = 1024
	sizeFeatures2     = 256
	sizeMemProps2     = 16 + 520
	sizeSubgroupProps = 32
	sizeDriverProps   = 536
	sizeFloatControls = 88
	offRTEFloat16     = 60 // shaderRoundingModeRTEFloat16
	sizeSmallFeatures = 32
	sizeMemBudget     = 16 + 256
)

func put32(p unsafe.Pointer, off int, v uint32) { *(*uint32)(unsafe.Add(p, off)) = v }
func get32(p unsafe.Pointer, off int) uint32    { return *(*uint32)(unsafe.Add(p, off)) }
func get64(p unsafe.Pointer, off int) uint64    { return *(*uint64)(unsafe.Add(p, off)) }
func putPtr(p unsafe.Pointer, off int, v unsafe.Pointer) {
	*(*unsafe.Pointer)(unsafe.Add(p, off)) = v
}

// link gives the C struct p the type st and appends it to the pNext chain
// whose last struct is *tail.
func link(tail *unsafe.Pointer, p unsafe.Pointer, st uint32) {
	put32(p, 0, st)
	putPtr(*tail, 8, p)
	*tail = p
}

func (in *instance) describe(idx int) physInfo {
	pd := in.physical[idx]
	var pi physInfo
	vk.GetPhysicalDeviceProperties(pd, &pi.props)
	pi.props.Deref()
	pi.limits = pi.props.Limits
	pi.limits.Deref()
	vk.GetPhysicalDeviceMemoryProperties(pd, &pi.mem)
	pi.mem.Deref()
	for i := range pi.mem.MemoryTypes {
		pi.mem.MemoryTypes[i].Deref()
	}
	for i := range pi.mem.MemoryHeaps {
		pi.mem.MemoryHeaps[i].Deref()
	}
	pi.exts = deviceExtensions(pd)
	pi.apiVersion = pi.props.ApiVersion

	var nq uint32
	vk.GetPhysicalDeviceQueueFamilyProperties(pd, &nq, nil)
	qs := make([]vk.QueueFamilyProperties, nq)
	vk.GetPhysicalDeviceQueueFamilyProperties(pd, &nq, qs)
	best := -1
	for i := range qs {
		qs[i].Deref()
		f := vk.QueueFlagBits(qs[i].QueueFlags)
		if f&vk.QueueComputeBit == 0 {
			continue
		}
		dedicated := f&vk.QueueGraphicsBit == 0 && qs[i].TimestampValidBits > 0
		if best < 0 || dedicated {
			best = i
			if dedicated {
				break
			}
		}
	}
	if best >= 0 {
		pi.queueFamily = uint32(best)
		pi.tsBits = qs[best].TimestampValidBits
	}

	var heap int64
	for i := uint32(0); i < pi.mem.MemoryHeapCount; i++ {
		h := pi.mem.MemoryHeaps[i]
		if vk.MemoryHeapFlagBits(h.Flags)&vk.MemoryHeapDeviceLocalBit != 0 && int64(h.Size) > heap {
			heap = int64(h.Size)
		}
	}
	major, minor := pi.apiVersion>>22, (pi.apiVersion>>12)&0x3ff
	d := gpu.DeviceInfo{
		Index:          idx,
		Name:           vk.ToString(pi.props.DeviceName[:]),
		Backend:        "vulkan",
		Type:           deviceType(pi.props.DeviceType),
		APIVersion:     fmt.Sprintf("%d.%d.%d", major, minor, pi.apiVersion&0xfff),
		MemoryBytes:    heap,
		SharedMemBytes: int(pi.limits.MaxComputeSharedMemorySize),
		MaxBindBytes:   int64(pi.limits.MaxStorageBufferRange),
		CoopMatKHR:     pi.exts["VK_KHR_cooperative_matrix"],
		CoopMatNV:      pi.exts["VK_NV_cooperative_matrix"],
		CoopMat2NV:     pi.exts["VK_NV_cooperative_matrix2"],
		BF16:           pi.exts["VK_KHR_shader_bfloat16"],
		Timestamps:     pi.tsBits > 0 && pi.limits.TimestampPeriod > 0,
	}
	v12 := major > 1 || minor >= 2
	if fn := instanceProc(in.h, "vkGetPhysicalDeviceProperties2"); fn != nil {
		p2 := cAlloc(sizeProps2)
		sg := cAlloc(sizeSubgroupProps)
		dr := cAlloc(sizeDriverProps)
		fc := cAlloc(sizeFloatControls)
		sz := cAlloc(sizeSmallFeatures)
		sm := cAlloc(sizeSmallFeatures)
		amd := cAlloc(sizeCoreAMD)
		cm2 := cAlloc(sizeSmallFeatures)
		put32(p2, 0, stProps2)
		tail := p2
		link(&tail, sg, stSubgroupProps)
		if v12 || pi.exts["VK_KHR_driver_properties"] {
			link(&tail, dr, stDriverProps)
		}
		if pi.exts["VK_KHR_shader_float_controls"] {
			link(&tail, fc, stFloatControls)
		}
		if pi.exts["VK_EXT_subgroup_size_control"] {
			link(&tail, sz, stSGSizeProps)
		}
		if pi.exts["VK_NV_shader_sm_builtins"] {
			link(&tail, sm, stSMBuiltinsNV)
		}
		if pi.exts["VK_AMD_shader_core_properties"] {
			link(&tail, amd, stCoreAMD)
		}
		if pi.exts["VK_NV_cooperative_matrix2"] {
			link(&tail, cm2, stCoop2Props)
		}
		callPD2(fn, pd, p2)
		if get32(cm2, 0) == stCoop2Props {
			// cooperativeMatrixWorkgroupScopeMaxWorkgroupSize,
			// cooperativeMatrixFlexibleDimensionsMaxDimension.
			pi.cm2 = &cm2Caps{maxWG: get32(cm2, 16), maxDim: get32(cm2, 20)}
		}
		// Compute units: shaderSMCount; or shaderEngineCount x
		// shaderArraysPerEngineCount x computeUnitsPerShaderArray.
		switch {
		case get32(sm, 0) == stSMBuiltinsNV:
			d.ComputeUnits = int(get32(sm, 16))
		case get32(amd, 0) == stCoreAMD:
			d.ComputeUnits = int(get32(amd, 16) * get32(amd, 20) * get32(amd, 24))
		}
		d.SubgroupSize = int(get32(sg, 16))
		pi.rte16 = get32(fc, 0) == stFloatControls && get32(fc, offRTEFloat16) != 0
		if get32(dr, 0) == stDriverProps {
			name := cString(unsafe.Add(dr, 20), 256)
			inf := cString(unsafe.Add(dr, 276), 256)
			d.Driver = strings.TrimSpace(name + " " + inf)
		}
		if get32(sz, 0) == stSGSizeProps {
			// minSubgroupSize, maxSubgroupSize, maxComputeWorkgroupSubgroups,
			// requiredSubgroupSizeStages (the compute bit, 0x20).
			n := uint32(d.SubgroupSize)
			pi.pinSubgroup = n > 0 && get32(sz, 16) <= n && n <= get32(sz, 20) && get32(sz, 24) >= 8 && get32(sz, 28)&0x20 != 0
		}
		cFree(p2)
		cFree(sg)
		cFree(dr)
		cFree(fc)
		cFree(sz)
		cFree(sm)
		cFree(amd)
		cFree(cm2)
	}
	sgFeatures := false
	if fn := instanceProc(in.h, "vkGetPhysicalDeviceFeatures2"); fn != nil && (v12 || pi.exts["VK_KHR_16bit_storage"]) {
		f2 := cAlloc(sizeFeatures2)
		s16 := cAlloc(sizeSmallFeatures)
		f16 := cAlloc(sizeSmallFeatures)
		put32(f2, 0, stFeatures2)
		vmm := cAlloc(sizeSmallFeatures)
		coop := cAlloc(sizeSmallFeatures)
		khr := cAlloc(sizeSmallFeatures)
		sz := cAlloc(sizeSmallFeatures)
		cm2 := cAlloc(sizeCoop2Features)
		tail := f2
		link(&tail, s16, stStorage16)
		if v12 || pi.exts["VK_KHR_shader_float16_int8"] {
			link(&tail, f16, stFloat16Int8)
		}
		if pi.exts["VK_KHR_vulkan_memory_model"] {
			link(&tail, vmm, stMemoryModel)
		}
		if pi.exts["VK_NV_cooperative_matrix"] {
			link(&tail, coop, stCoopMatNV)
		}
		if pi.exts["VK_KHR_cooperative_matrix"] {
			link(&tail, khr, stCoopMatKHR)
		}
		if pi.exts["VK_EXT_subgroup_size_control"] {
			link(&tail, sz, stSGSizeFeatures)
		}
		if pi.exts["VK_NV_cooperative_matrix2"] {
			link(&tail, cm2, stCoop2Features)
		}
		callPD2(fn, pd, f2)
		// subgroupSizeControl and computeFullSubgroups.
		sgFeatures = get32(sz, 0) == stSGSizeFeatures && get32(sz, 16) != 0 && get32(sz, 20) != 0
		d.Storage16 = get32(s16, 16) != 0
		d.FP16 = d.Storage16 && get32(f16, 16) != 0
		// What gemm_coop.comp needs: NV cooperative matrices, f16
		// arithmetic and the Vulkan memory model, each as an extension
		// (the instance is 1.1).
		pi.coopNV = d.FP16 && pi.exts["VK_KHR_shader_float16_int8"] &&
			get32(vmm, 0) == stMemoryModel && get32(vmm, 16) != 0 &&
			get32(coop, 0) == stCoopMatNV && get32(coop, 16) != 0
		// The same for the KHR form, which also lists the shapes it runs:
		// gemm_coop needs f16 inputs, an f32 accumulator, subgroup scope,
		// square fragments of 16 (or 8: lavapipe) and four subgroups per
		// workgroup.
		if d.FP16 && pi.exts["VK_KHR_shader_float16_int8"] &&
			get32(vmm, 0) == stMemoryModel && get32(vmm, 16) != 0 &&
			get32(khr, 0) == stCoopMatKHR && get32(khr, 16) != 0 &&
			d.SubgroupSize > 0 && 4*d.SubgroupSize <= int(pi.limits.MaxComputeWorkGroupInvocations) {
			for _, f := range []uint32{16, 8} {
				if in.coopShape(pd, f, f, f) {
					pi.coopKHR = int(f)
					break
				}
			}
		}
		// gemm_cm2: its features, on top of the KHR 16 x 16 x 16 path
		// (whose device features it shares), with SPIR-V 1.6 allowed.
		v13 := major > 1 || minor >= 3
		if pi.cm2 != nil && pi.coopKHR == 16 && cm2Usable(cm2) && v13 && in.apiVersion >= vk.MakeVersion(1, 3, 0) {
			pi.cm2.gran = in.cm2Granularities(pd)
		}
		for _, p := range []unsafe.Pointer{f2, s16, f16, vmm, coop, khr, sz, cm2} {
			cFree(p)
		}
	}
	pi.pinSubgroup = pi.pinSubgroup && sgFeatures
	if pi.cm2 != nil && !pi.cm2.anyTile() {
		pi.cm2 = nil // none of gemm_cm2's blocks listed
	}
	pi.info = d
	if shader, _, _ := coopChoice(pi); shader != "" {
		pi.info.CoopGemm = coopNames[shader]
		if useCM2(pi) {
			pi.info.CoopGemm = "NV coopmat2, " + pi.info.CoopGemm
		}
	}
	return pi
}

// coopShape reports whether the device lists an m x n x k KHR
// cooperative-matrix shape with f16 A and B, f32 C and result, at
// subgroup scope.
func (in *instance) coopShape(pd vk.PhysicalDevice, m, n, k uint32) bool {
	const f16, f32, subgroup = 0, 1, 3 // VkComponentTypeKHR, VkScopeKHR
	found := false
	in.eachStruct(pd, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR", stCoopPropsKHR, sizeCoopPropsKHR, func(p unsafe.Pointer) {
		found = found || get32(p, 16) == m && get32(p, 20) == n && get32(p, 24) == k &&
			get32(p, 28) == f16 && get32(p, 32) == f16 && get32(p, 36) == f32 && get32(p, 40) == f32 &&
			get32(p, 48) == subgroup
	})
	return found
}

// eachStruct calls the (VkPhysicalDevice, uint32_t*, T*) enumeration fn
// (vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR and the like) for
// structs of type st and size bytes, and visit on each one it lists;
// nothing where the function is missing or fails.
func (in *instance) eachStruct(pd vk.PhysicalDevice, fn string, st uint32, size int, visit func(p unsafe.Pointer)) {
	f := instanceProc(in.h, fn)
	if f == nil {
		return
	}
	cnt := cAlloc(4)
	defer cFree(cnt)
	if callCount(f, pd, cnt, nil) != vk.Success {
		return
	}
	num := int(get32(cnt, 0))
	if num == 0 {
		return
	}
	props := cAlloc(num * size)
	defer cFree(props)
	for i := 0; i < num; i++ {
		put32(props, i*size, st)
	}
	if r := callCount(f, pd, cnt, props); r != vk.Success && r != vk.Incomplete {
		return
	}
	for i := 0; i < int(get32(cnt, 0)); i++ {
		visit(unsafe.Add(props, i*size))
	}
}

// heapFree returns the free bytes of heap per VK_EXT_memory_budget, or -1.
func (in *instance) heapFree(pd vk.PhysicalDevice, exts map[string]bool, heap uint32) int64 {
	fn := instanceProc(in.h, "vkGetPhysicalDeviceMemoryProperties2")
	if fn == nil || !exts["VK_EXT_memory_budget"] {
		return -1
	}
	m2 := cAlloc(sizeMemProps2)
	b := cAlloc(sizeMemBudget)
	defer cFree(m2)
	defer cFree(b)
	put32(m2, 0, stMemProps2)
	put32(b, 0, stMemBudget)
	putPtr(m2, 8, b)
	callPD2(fn, pd, m2)
	budget := int64(get64(b, 16+8*int(heap)))
	usage := int64(get64(b, 144+8*int(heap)))
	return budget - usage
}

// cString reads a NUL-terminated string of at most n bytes from C memory.
func cString(p unsafe.Pointer, n int) string {
	b := unsafe.Slice((*byte)(p), n)
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func deviceType(t vk.PhysicalDeviceType) gpu.DeviceType {
	switch t {
	case vk.PhysicalDeviceTypeDiscreteGpu:
		return gpu.Discrete
	case vk.PhysicalDeviceTypeIntegratedGpu:
		return gpu.Integrated
	case vk.PhysicalDeviceTypeVirtualGpu:
		return gpu.Virtual
	case vk.PhysicalDeviceTypeCpu:
		return gpu.CPU
	}
	return gpu.Other
}
