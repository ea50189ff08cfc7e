# blip: `make demo` installs what is missing, builds and runs the main job;
# `make test` runs every test (CPU reference and Vulkan on lavapipe).

GO      ?= go
GLSLC   ?= glslc
SHADERS := $(wildcard shaders/*.comp)
SPV     := $(patsubst shaders/%.comp,shaders/spv/%.spv,$(SHADERS))
GLSLFLAGS := --target-env=vulkan1.1 -O -Ishaders

.PHONY: all build deps shaders shaders-check test demo bench clean gpu-run-prep

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

shaders: $(SPV)

shaders/spv/%.spv: shaders/%.comp $(wildcard shaders/*.glsl)
	@mkdir -p shaders/spv
	$(GLSLC) $(GLSLFLAGS) -fshader-stage=compute -o $@ $<

# Fails when the committed SPIR-V is not what the sources compile to.
shaders-check:
	@tmp=$$(mktemp -d); fail=0; \
	for f in $(SHADERS); do \
	  n=$$(basename $$f .comp); \
	  $(GLSLC) $(GLSLFLAGS) -fshader-stage=compute -o $$tmp/$$n.spv $$f || exit 1; \
	  if ! cmp -s $$tmp/$$n.spv shaders/spv/$$n.spv; then echo "stale SPIR-V: shaders/spv/$$n.spv (run make shaders and commit)"; fail=1; fi; \
	  spirv-val --target-env vulkan1.1 shaders/spv/$$n.spv || fail=1; \
	done; \
	for s in shaders/spv/*.spv; do \
	  n=$$(basename $$s .spv); [ -f shaders/$$n.comp ] || { echo "orphan SPIR-V: $$s"; fail=1; }; \
	done; \
	rm -rf $$tmp; exit $$fail

test: deps shaders-check
	$(GO) vet ./...
	BLIP_VALIDATE=1 BLIP_REQUIRE_VULKAN=1 BLIP_REQUIRE_CHROMIUM=1 $(GO) test -count=1 -timeout 25m ./...

demo: deps build
	./bin/blip devices
	./bin/blip demo --out demo-out

clean:
	rm -rf bin

# Binaries for gpu/bench/gpu_run.sh on a lent GPU machine (no Go there).
gpu-run-prep: build
	$(GO) test -c -o bin/vk.test ./gpu/vk
