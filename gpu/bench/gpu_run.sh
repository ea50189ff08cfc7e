#!/usr/bin/env bash
# One prepared run on a lent NVIDIA machine (the device tool): Vulkan loader,
# device list, the Vulkan tests and parity table on the GPU, and the kernel
# benchmarks next to PyTorch/cuBLAS (fp32, TF32 off) in the same command.
# Expects bin/blip and bin/vk.test built here (make gpu-run-prep) and the
# loader packages in .gl/ (see the device README). Writes to $OUT.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
bin/blip devices | tee "$OUT/devices.txt"
echo "== vulkan tests on the GPU"
BLIP_REQUIRE_VULKAN=1 timeout 240 bin/vk.test -test.count=1 -test.timeout 230s 2>&1 | tail -n 40 | tee "$OUT/vktest.txt"
echo "== kernel benchmarks (blip on the GPU, PyTorch CUDA fp32 in the same run)"
timeout 240 bin/blip --backend vulkan bench kernels --no-cpu --torch python3 --torch-device cuda --min-time 300ms --json > "$OUT/bench.json" 2> "$OUT/bench.err"
python3 - "$OUT/bench.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("device:", d["device"]["Name"], "| torch", (d.get("torch") or {}).get("torch"), (d.get("torch") or {}).get("device"))
for r in d["results"]:
    dv = r["device"]
    print(f'{r["case"]:40s} blip {dv.get("gflops",0):9.1f} GF/s {dv.get("seconds_per_call",0)*1e3:9.3f} ms | torch {r.get("torch_gflops",0):9.1f} GF/s | blip/torch {r.get("device_vs_torch",0):.2f}x {dv.get("error","")}')
PY
tail -n 5 "$OUT/bench.err"
echo "== GEMM shapes of the compute-core issue, transposed variants"
timeout 120 bin/blip --backend vulkan bench kernels --no-cpu --torch python3 --torch-device cuda --min-time 300ms \
  --gemm 4096x4096x4096:00 --gemm 4096x4096x4096:01 --gemm 18464x3072x768:01 --gemm 577x768x3072:01 2>&1 | tail -n 6
