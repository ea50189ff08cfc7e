#!/usr/bin/env bash
# One prepared run on a lent NVIDIA machine (the device tool): Vulkan loader,
# device list, then the stages named in STAGES (default "vk coop model", whose
# timeouts add up to under 10 minutes; "kernels" on request), in this order:
#   vk      the Vulkan tests and parity table on the GPU
#   coop    the tensor-core GEMM (KHR where offered, else NV): its parity test and fp16
#           GEMM timings next to torch.matmul fp16, with and without it
#   kernels kernel benchmarks next to PyTorch/cuBLAS (fp32, TF32 off)
#   model   blip bench model (base, anchors' sizes, fp32 and fp16, and the
#           captions without command replay) next to HF transformers in the
#           same command
# Each stage has its own timeout. Expects bin/blip and bin/vk.test built here (make gpu-run-prep) and
# the loader packages in .gl/ (see the device README). Writes to $OUT.
set -u
OUT=${OUT:-/tmp/out}
STAGES=${STAGES:-vk coop model}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
bin/blip devices | tee "$OUT/devices.txt"
has() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }

if has vk; then
  echo "== vulkan tests on the GPU"
  BLIP_REQUIRE_VULKAN=1 timeout 100 bin/vk.test -test.count=1 -test.timeout 95s 2>&1 | tail -n 40 | tee "$OUT/vktest.txt"
fi

if has coop; then
  echo "== tensor-core GEMM (KHR where offered, else NV: BLIP_COOPMAT=1)"
  BLIP_COOPMAT=1 BLIP_REQUIRE_COOPMAT=1 BLIP_REQUIRE_VULKAN=1 timeout 60 bin/vk.test -test.run 'TestGemmCoop|TestAttentionCoop' -test.count=1 -test.v 2>&1 | grep -E '^(---|ok|FAIL|PASS)|worst|Error|error' | tail -n 40 | tee "$OUT/coop.txt"
  for coop in 0 1; do
    BLIP_COOPMAT=$coop timeout 45 bin/blip --backend vulkan bench kernels --no-cpu --torch python3 --torch-device cuda --min-time 300ms \
      --gemm 4096x4096x4096:01:f16 --gemm 18464x3072x768:01:f16 --gemm 577x768x768:01:f16 2>&1 | tail -n 4 | sed "s/^/coop=$coop /" | tee -a "$OUT/coop.txt"
  done
fi

if has kernels; then
  echo "== kernel benchmarks (blip on the GPU, PyTorch CUDA fp32 in the same run)"
  timeout 150 bin/blip --backend vulkan bench kernels --no-cpu --torch python3 --torch-device cuda --min-time 300ms --json > "$OUT/bench.json" 2> "$OUT/bench.err"
  python3 - "$OUT/bench.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("device:", d["device"]["Name"], "| torch", (d.get("torch") or {}).get("torch"), (d.get("torch") or {}).get("device"))
for r in d["results"]:
    dv = r["device"]
    print(f'{r["case"]:40s} blip {dv.get("gflops",0):9.1f} GF/s {dv.get("seconds_per_call",0)*1e3:9.3f} ms | torch {r.get("torch_gflops",0):9.1f} GF/s | blip/torch {r.get("device_vs_torch",0):.2f}x {dv.get("error","")}')
PY
  tail -n 5 "$OUT/bench.err"
fi

if has model; then
  # In groups, so that a timeout loses one group's table, not all of them.
  echo "== blip bench model next to HF transformers (same command per group), fp32"
  for only in caption1,beam3,caption-batch vit,itm train-caption,pretrain; do
    timeout 70 bin/blip --backend vulkan bench model --size base --quick --torch python3 --torch-device cuda --only $only 2>&1 | tail -n 8 | tee -a "$OUT/model_fp32.txt"
  done
  echo "== the same with fp16 weights (tensor cores: KHR cooperative matrices where offered)"
  timeout 80 bin/blip --backend vulkan --precision fp16 bench model --size base --quick --torch python3 --torch-device cuda \
    --only caption1,caption-batch,vit,itm 2>&1 | tail -n 10 | tee "$OUT/model_fp16.txt"
  echo "== captions with every plan recorded call by call (BLIP_REPLAY=0), to set against the fp32 table"
  BLIP_REPLAY=0 timeout 35 bin/blip --backend vulkan bench model --size base --quick --torch python3 --torch-device cuda \
    --only caption1,beam3 2>&1 | tail -n 4 | tee "$OUT/model_noreplay.txt"
fi
