# blip: `make demo` installs what is missing, builds and runs the main job;
# `make test` runs every test (CPU reference and Vulkan on lavapipe).

GO      ?= go
GLSLC   ?= glslc
# The cooperative-matrix-2 shaders (*_cm2.comp) need SPIR-V 1.6 and Debian
# 13's glslc (.ci/trixie-tools); the rest Debian 12's, for Vulkan 1.1.
CM2     := $(wildcard shaders/*_cm2.comp)
SHADERS := $(filter-out $(CM2),$(wildcard shaders/*.comp))
SPV     := $(patsubst shaders/%.comp,shaders/spv/%.spv,$(SHADERS))
CM2SPV  := $(patsubst shaders/%.comp,shaders/spv/%.spv,$(CM2))
GLSLFLAGS := --target-env=vulkan1.1 -O -Ishaders
CM2FLAGS  := --target-env=vulkan1.3 -O -Ishaders
# The cooperative-matrix shaders again, translated from NV to KHR cooperative
# matrices by shaders/nv2khr (Debian 12's glslc compiles only the NV form).
KHR     := $(patsubst shaders/%.comp,shaders/spv/%_khr.spv,$(wildcard shaders/gemm_coop*.comp)) shaders/spv/attention_coop_khr.spv shaders/spv/attention_coop8_khr.spv shaders/spv/attention_coop_bwd_khr.spv shaders/spv/attention_coop_bwd8_khr.spv
NV2KHR  := $(wildcard shaders/nv2khr/*.go)
# Debian 13's spirv-val and Mesa 26 lavapipe (.ci/trixie-tools): the
# validator that knows KHR cooperative matrices, and a CPU driver that
# runs them.
TRIXIE  := $(CURDIR)/.toolchain/trixie

.PHONY: all build deps shaders shaders-check test test-coopmat test-rows trixie-tools demo bench clean gpu-run-prep

all: build

# System packages: the Vulkan loader, lavapipe, the validation layer,
# glslc and headless Chromium (the web page's end-to-end test). Installs
# only what is missing (needs root, as on CI and the dev box).
deps:
	@missing=""; \
	for p in libvulkan1 mesa-vulkan-drivers vulkan-validationlayers glslc spirv-tools chromium; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

build:
	$(GO) build -o bin/blip .

shaders: $(SPV) $(KHR) $(CM2SPV)

shaders/spv/%_cm2.spv: shaders/%_cm2.comp $(wildcard shaders/*.glsl) | trixie-tools
	@mkdir -p shaders/spv
	$(TRIXIE)/glslc $(CM2FLAGS) -fshader-stage=compute -o $@ $<

shaders/spv/%.spv: shaders/%.comp $(wildcard shaders/*.glsl)
	@mkdir -p shaders/spv
	$(GLSLC) $(GLSLFLAGS) -fshader-stage=compute -o $@ $<

shaders/spv/%_khr.spv: shaders/spv/%.spv $(NV2KHR)
	$(GO) run ./shaders/nv2khr $< $@

trixie-tools:
	.ci/trixie-tools $(TRIXIE)

# Fails when the committed SPIR-V is not what the sources compile (and
# translate) to, or does not validate.
shaders-check: trixie-tools
	@tmp=$$(mktemp -d); fail=0; \
	for f in $(SHADERS); do \
	  n=$$(basename $$f .comp); \
	  $(GLSLC) $(GLSLFLAGS) -fshader-stage=compute -o $$tmp/$$n.spv $$f || exit 1; \
	  if ! cmp -s $$tmp/$$n.spv shaders/spv/$$n.spv; then echo "stale SPIR-V: shaders/spv/$$n.spv (run make shaders and commit)"; fail=1; fi; \
	  spirv-val --target-env vulkan1.1 shaders/spv/$$n.spv || fail=1; \
	done; \
	for f in $(CM2); do \
	  n=$$(basename $$f .comp); \
	  $(TRIXIE)/glslc $(CM2FLAGS) -fshader-stage=compute -o $$tmp/$$n.spv $$f || exit 1; \
	  if ! cmp -s $$tmp/$$n.spv shaders/spv/$$n.spv; then echo "stale SPIR-V: shaders/spv/$$n.spv (run make shaders and commit)"; fail=1; fi; \
	  $(TRIXIE)/spirv-val --target-env vulkan1.3 shaders/spv/$$n.spv || fail=1; \
	done; \
	for k in $(KHR); do \
	  n=$$(basename $$k _khr.spv); \
	  $(GO) run ./shaders/nv2khr $$tmp/$$n.spv $$tmp/$${n}_khr.spv || exit 1; \
	  if ! cmp -s $$tmp/$${n}_khr.spv $$k; then echo "stale SPIR-V: $$k (run make shaders and commit)"; fail=1; fi; \
	  $(TRIXIE)/spirv-val --target-env vulkan1.1 $$k || fail=1; \
	done; \
	for s in shaders/spv/*.spv; do \
	  n=$$(basename $$s .spv); \
	  [ -f shaders/$$n.comp ] || echo " $(KHR) " | grep -q " $$s " || { echo "orphan SPIR-V: $$s"; fail=1; }; \
	done; \
	rm -rf $$tmp; exit $$fail

test: deps shaders-check
	$(GO) vet ./...
	BLIP_VALIDATE=1 BLIP_REQUIRE_VULKAN=1 BLIP_REQUIRE_CHROMIUM=1 $(GO) test -count=1 -timeout 25m ./...
	$(MAKE) test-coopmat
	$(MAKE) test-rows

# GPUs run decoding's few-row products on gemm_rows.comp, CPU drivers do
# not: the golden captions and VQA answers through it on lavapipe, so that
# CI checks it inside the model too (TestGemmRows checks the kernel, and
# TestGemmNormRows gemm_rows_ln.comp, which such a product and the
# LayerNorm after it run on).
test-rows:
	BLIP_GEMM_ROWS=1 BLIP_VALIDATE=1 BLIP_REQUIRE_VULKAN=1 $(GO) test -count=1 ./blip \
	  -run 'TestGenerateMatchesTransformers|TestCaptioningGolden|TestVQAGreedyBruteForce|TestPrecisionGolden'

# The tensor-core GEMM and attention (KHR cooperative matrices) against the
# CPU, fp16 training plans and the golden model's fp16 outputs through them, on Mesa
# 26 lavapipe: the system's lavapipe (Mesa 22) offers no cooperative
# matrices, so without this nothing on CI would run that shader.
test-coopmat: trixie-tools
	@mkdir -p bin
	$(GO) test -c -o bin/vk.test ./gpu/vk
	$(GO) test -c -o bin/blip.test ./blip
	$(GO) test -c -o bin/graph.test ./graph
	cd gpu/vk && BLIP_REQUIRE_COOPMAT=1 BLIP_REQUIRE_VULKAN=1 $(TRIXIE)/run ../../bin/vk.test -test.count=1 -test.run 'TestGemmCoop|TestAttentionCoop|TestAttentionDeterministic|TestSubgroupPin'
	# The kernels whose last workgroup finishes the work (atomic counters,
	# coherent reads) on a second Vulkan implementation too.
	cd gpu/vk && BLIP_REQUIRE_VULKAN=1 $(TRIXIE)/run ../../bin/vk.test -test.count=1 -test.run 'TestGemmNormRows|TestGemmGroupRows|TestAttentionSplitOnePass|TestQueryAttentionLowering'
	cd graph && BLIP_REQUIRE_VULKAN=1 $(TRIXIE)/run ../bin/graph.test -test.count=1 -test.run 'TestAttentionF16Plans|TestWeightStorage|TestLowActivations'
	cd blip && BLIP_REQUIRE_COOPMAT=1 BLIP_REQUIRE_VULKAN=1 $(TRIXIE)/run ../bin/blip.test -test.count=1 -test.run 'TestPrecisionGolden'

demo: deps build
	./bin/blip devices
	./bin/blip demo --out demo-out

clean:
	rm -rf bin

# Binaries for gpu/bench/gpu_run.sh on a lent GPU machine (no Go there).
# What gpu/bench/gpu_run.sh runs on a lent GPU, stripped so that it and the
# tree fit a device call's 64 MiB: bin/blip, bin/vk.test, bin/blip.test, and
# with OLD=<revision> that revision's blip, gzipped, as bin/blip.old.gz (the
# ab stage's reference; gpu_run.sh unpacks it).
gpu-run-prep:
	$(GO) build -ldflags="-s -w" -o bin/blip .
	$(GO) test -c -ldflags="-s -w" -o bin/vk.test ./gpu/vk
	$(GO) test -c -ldflags="-s -w" -o bin/blip.test ./blip
	rm -f bin/blip.old bin/blip.old.gz
	@if [ -n "$(OLD)" ]; then \
	  wt=$$(mktemp -d) && git worktree add -q --detach $$wt $(OLD) && \
	  (cd $$wt && $(GO) build -ldflags="-s -w" -o $(CURDIR)/bin/blip.old .) ; rc=$$?; \
	  git worktree remove --force $$wt; [ $$rc = 0 ] && gzip -f bin/blip.old && echo "bin/blip.old.gz: $(OLD)"; \
	fi
