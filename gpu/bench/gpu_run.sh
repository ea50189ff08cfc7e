#!/usr/bin/env bash
# One prepared run on a lent NVIDIA machine (the device tool): Vulkan loader,
# device list, then the stages named in STAGES, in the order named (default
# "coop rows model16 model32" with the first two MODEL_GROUPS, whose
# timeouts add up to 595 s, under the 10 minutes a device call may run; each
# stage writes its file as it goes, so a call cut short keeps what ran; pick
# other sets by their timeouts):
#   vk       the Vulkan tests and parity table on the GPU
#   parity   the parity table, the few-row GEMM, split attention and the tile
#            choices alone (60 s: the whole vk suite may not finish in 110;
#            on the H200 161 cases passed in 40 s)
#   coop     the tensor-core kernels (KHR where offered, else NV): their parity
#            tests (cooptest alone), then (coopbench alone) fp16 GEMM timings in both blocks (BLIP_COOP_TILE=wide,
#            small), fp32 GEMM and attention fp32/fp16 (forward at 577
#            tokens, forward and backward at 197) next to torch.matmul and
#            SDPA in the same command (fp16 GEMM and attention also without
#            tensor cores: BLIP_COOPMAT=0)
#   rows     decoding's few-row GEMMs (gemm_rows.comp) and attention (the
#            split kernel, fp32 and F16) against the tiled kernels and, for
#            F16, the tensor-core attention (BLIP_GEMM_ROWS=0
#            BLIP_ATTN_SPLIT=0) and torch, same command each (80 s)
#   decode   the captions of bench model (batch 1 greedy and beam 3, batch
#            32) fp32 and fp16 with each linear layer and its LayerNorm in
#            one dispatch (gpu.GemmNorm) and a layer's q, k and v projections
#            in one (gemm_rows_seg), split attention's two passes in one
#            (attention_split_one) with the cross-attention's query
#            projection in it (attention_split_one_q); without the last
#            (noq: BLIP_ATTN_QPROJ=0); and all apart (BLIP_GEMM_NORM=0
#            BLIP_GEMM_GROUP=0 BLIP_ATTN_ONEPASS=0 BLIP_ATTN_QPROJ=0), then
#            caption batch 1's profile each way (about 130 s)
#   cm2      the cooperative-matrix-2 GEMM and attention (gemm_cm2,
#            attention_cm2, BLIP_COOPMAT2=1; NVIDIA): their parity tests
#            first (TestGemmCoop2: every F16 gemm case in every block the
#            driver lists; TestAttentionCoop2), then fp16 GEMM and
#            attention timings per GEMM block and on the KHR kernels, next
#            to torch.matmul and SDPA, then the
#            fp16 ViT, ITM and caption training step with it (next to HF
#            transformers) and without it, and the fp16 ViT's profile with
#            it (about 330 s: a call of its own)
#   ab       the tensor-core GEMM of bin/blip next to bin/blip.old (a build of
#            an earlier commit, where present: a change timed both ways in one
#            call), forward and training layouts, with its profiling switches
#            (BLIP_COOP_DIAG=1: staging alone, =2: products alone), then
#            fp16 ViT, ITM and caption training both ways (the new build
#            next to HF transformers)
#   act16    the fp16 ViT, ITM, ITM re-ranking and caption training step
#            with 16-bit activations (graph.Config.LowActivations) and
#            without (BLIP_LOW_ACTIVATIONS=0), then with them next to HF
#            fp16, then the fp16 ViT's profile each way (about 150 s)
#   kernels  the built-in kernel benchmarks next to PyTorch/cuBLAS (fp32, TF32 off)
#   model32  blip bench model (base, the anchors' sizes) next to HF transformers in
#            the same command, one command per group of MODEL_GROUPS (default:
#            the first two of "caption1,beam3,caption-batch vit,itm,itm-rerank train-caption,pretrain")
#   model16  the same with --precision fp16 (tensor cores), inference and the
#            caption training step (against PyTorch fp16 / bf16 autocast)
#   noreplay captions with every plan recorded call by call (BLIP_REPLAY=0)
#   runtime  the Vulkan runtime tests alone (a short check of memory and replay)
#   profile  GPU time per kernel of the captions, ITM (fp32), the ViT and the
#            caption training step (fp16); profile16 the fp16 ViT alone
# Each stage has its own timeout and prints its wall time. Expects bin/blip,
# bin/vk.test and bin/blip.test built here (make gpu-run-prep [OLD=rev]) and the loader packages in .gl/
# (see the device README); carry exactly those (bin/blip, bin/vk.test,
# bin/blip.test, bin/blip.old.gz, .gl: other builds in bin/ would pass the
# call's 64 MiB), e.g.
#   run command='STAGES=cm2 bash gpu/bench/gpu_run.sh' timeout_s=420
#       carry=[bin/blip, bin/vk.test, bin/blip.test, .gl]
# Writes one file per stage to $OUT (at most 8 come back from a call).
set -u
OUT=${OUT:-/tmp/out}
STAGES=${STAGES:-coop rows model16 model32}
MODEL_GROUPS=${MODEL_GROUPS:-caption1,beam3,caption-batch vit,itm,itm-rerank}
mkdir -p "$OUT"
# make gpu-run-prep OLD=<revision> ships the reference build gzipped.
[ -f bin/blip.old.gz ] && gunzip -f bin/blip.old.gz && chmod +x bin/blip.old
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
bin/blip devices | tee -a "$OUT/gpu.txt"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1 | tail -n 1 | tee -a "$OUT/gpu.txt"
t0=$(date +%s)
# took STAGE FILE: the stage's wall time, appended to FILE (not in a pipeline:
# t0 must change in this shell).
took() { echo "-- $1 took $(($(date +%s) - t0)) s" | tee -a "$2"; t0=$(date +%s); }

stage_vk() {
  echo "== vulkan tests on the GPU"
  # -test.v to a file: a timeout still shows which tests passed, and which ran.
  BLIP_REQUIRE_VULKAN=1 timeout 110 bin/vk.test -test.count=1 -test.v -test.timeout 105s > /tmp/vktest.log 2>&1
  echo "exit $?" >> /tmp/vktest.log
  grep -E '^(--- (FAIL|SKIP)|FAIL|ok|PASS|panic: test timed out)|^exit|_test.go:[0-9]+: .*(want|error|mismatch)' /tmp/vktest.log | head -n 60 | tee "$OUT/vktest.txt"
  grep -cE '^--- PASS' /tmp/vktest.log | sed 's/^/tests passed: /' | tee -a "$OUT/vktest.txt"
  grep -E '^=== RUN' /tmp/vktest.log | tail -n 3 | tee -a "$OUT/vktest.txt"
  took vk "$OUT/vktest.txt"
}

stage_parity() {
  echo "== the parity table and decoding's kernels on the GPU"
  BLIP_REQUIRE_VULKAN=1 timeout 60 bin/vk.test -test.count=1 -test.v \
    -test.run 'TestParity$|TestGemmRows|TestGemmNormRows|TestGemmGroupRows|TestAttentionSplitOnePass|TestQueryAttentionLowering|TestAttentionGridSplit|TestPickTileFill|TestCoopTile' > /tmp/parity.log 2>&1
  echo "exit $? (124: the time limit)" >> /tmp/parity.log
  # Failures and their messages first (the worst-error reports of passing
  # cases would hide them), then the counts and where it stopped.
  grep -E -- '--- FAIL|^FAIL|panic' /tmp/parity.log | head -n 30 | tee "$OUT/parity.txt"
  grep -E '_test.go:[0-9]+: ' /tmp/parity.log | grep -v 'worst error' | head -n 20 | tee -a "$OUT/parity.txt"
  grep -E '^(ok|PASS|exit)' /tmp/parity.log | tee -a "$OUT/parity.txt"
  grep -cE -- '^    --- PASS' /tmp/parity.log | sed 's/^/cases passed: /' | tee -a "$OUT/parity.txt"
  grep -cE -- '--- FAIL' /tmp/parity.log | sed 's/^/failures: /' | tee -a "$OUT/parity.txt"
  grep -E '^=== RUN' /tmp/parity.log | tail -n 1 | sed 's/^/last started: /' | tee -a "$OUT/parity.txt"
  took parity "$OUT/parity.txt"
}

stage_coop() { stage_cooptest; stage_coopbench; }

stage_cooptest() {
  echo "== tensor-core kernels (KHR where offered, else NV: BLIP_COOPMAT=1)"
  BLIP_COOPMAT=1 BLIP_REQUIRE_COOPMAT=1 BLIP_REQUIRE_VULKAN=1 timeout 60 bin/vk.test -test.run 'TestGemmCoop|TestAttentionCoop|TestAttentionDeterministic|TestSubgroupPin' -test.count=1 -test.v > /tmp/cooptest.log 2>&1
  echo "exit $?" >> /tmp/cooptest.log
  # Top-level results, failures and their messages, and the worst errors of
  # the backward cases.
  grep -E '^(--- |ok|FAIL|PASS|exit)|--- FAIL|panic|_test.go:[0-9]+: ' /tmp/cooptest.log | grep -v 'worst error' | head -n 40 | tee "$OUT/coop.txt"
  grep -E 'attention_coop_bwd.*worst' /tmp/cooptest.log | sort -k5,5g | tail -n 3 | tee -a "$OUT/coop.txt"
  (cd blip && BLIP_REQUIRE_COOPMAT=1 BLIP_REQUIRE_VULKAN=1 timeout 30 ../bin/blip.test -test.run TestPrecisionGolden -test.count=1 -test.v 2>&1 | grep -E '^(---|ok|FAIL|PASS)|worst|max|Error|error' | tail -n 20) | tee -a "$OUT/coop.txt"
  took coop-parity "$OUT/coop.txt"
}

stage_coopbench() {
  # Both blocks of the tensor-core GEMM on the same products (the default
  # picks by grid size), then fp32 GEMM and attention.
  for tile in wide small; do
    BLIP_COOPMAT=1 BLIP_COOP_TILE=$tile timeout 45 bin/blip --backend vulkan bench kernels --no-cpu --torch python3 --torch-device cuda --min-time 300ms \
      --gemm 4096x4096x4096:01:f16 --gemm 18464x3072x768:01:f16 --gemm 18464x768x3072:01:f16 --gemm 577x768x768:01:f16 2>&1 |
      grep -v ' done$' | tail -n 6 | sed "s/^/coop=1 tile=$tile /" | tee -a "$OUT/coop.txt"
  done
  BLIP_COOPMAT=1 timeout 45 bin/blip --backend vulkan bench kernels --no-cpu --torch python3 --torch-device cuda --min-time 300ms \
    --gemm 4096x4096x4096 --attention 32x12x577x64 --attention 32x12x577x64:f16 \
    --attention 32x12x197x64:bwd --attention 32x12x197x64:f16:bwd 2>&1 | grep -v ' done$' | tail -n 7 | sed "s/^/coop=1 /" | tee -a "$OUT/coop.txt"
  BLIP_COOPMAT=0 BLIP_ATTN_COOP=0 timeout 40 bin/blip --backend vulkan bench kernels --no-cpu --torch python3 --torch-device cuda --min-time 300ms \
    --gemm 4096x4096x4096:01:f16 --attention 32x12x577x64:f16 2>&1 | grep -v ' done$' | tail -n 4 | sed "s/^/coop=0 /" | tee -a "$OUT/coop.txt"
  took coop-bench "$OUT/coop.txt"
}

stage_cm2() {
  echo "== cooperative matrix 2 GEMM and attention (BLIP_COOPMAT2=1): parity, then timings against the KHR kernels and torch"
  BLIP_COOPMAT2=1 bin/blip devices 2>&1 | tee "$OUT/cm2.txt"
  BLIP_COOPMAT2=1 BLIP_REQUIRE_COOPMAT2=1 BLIP_REQUIRE_VULKAN=1 timeout 50 bin/vk.test -test.count=1 -test.v \
    -test.run 'TestGemmCoop2|TestAttentionCoop2|TestCM2|TestAttnCM2' > /tmp/cm2.log 2>&1
  echo "exit $? (124: the time limit)" >> /tmp/cm2.log
  # Failures and their messages first, then the counts.
  grep -E -- '--- FAIL|^FAIL|panic' /tmp/cm2.log | head -n 30 | tee -a "$OUT/cm2.txt"
  grep -E '_test.go:[0-9]+: ' /tmp/cm2.log | grep -v 'worst error' | head -n 20 | tee -a "$OUT/cm2.txt"
  grep -E 'worst error' /tmp/cm2.log | sort -k5,5g | tail -n 3 | tee -a "$OUT/cm2.txt"
  grep -E '^(ok|PASS|exit)' /tmp/cm2.log | tee -a "$OUT/cm2.txt"
  grep -cE -- '^    --- PASS' /tmp/cm2.log | sed 's/^/cases passed: /' | tee -a "$OUT/cm2.txt"
  took cm2-parity "$OUT/cm2.txt"
  local shapes="--gemm 4096x4096x4096:01:f16 --gemm 18464x3072x768:01:f16 --gemm 18464x768x3072:01:f16 --gemm 577x768x768:01:f16 --gemm 18464x768x3072:00:f16 --gemm 768x3072x18464:10:f16 --attention 32x12x577x64:f16"
  # The default block choice and the KHR GEMM next to torch; each block
  # forced (BLIP_COOP2_TILE), blip alone.
  for v in "BLIP_COOPMAT2=1" "BLIP_COOPMAT2=0"; do
    env $v timeout 40 bin/blip --backend vulkan bench kernels --no-cpu --torch python3 --torch-device cuda --min-time 300ms $shapes 2>&1 |
      grep -v ' done$' | tail -n 8 | sed "s/^/$v /" | tee -a "$OUT/cm2.txt"
  done
  for tile in 256x128x256x64 256x128x128x64 128x64x64x64; do
    BLIP_COOPMAT2=1 BLIP_COOP2_TILE=$tile timeout 20 bin/blip --backend vulkan bench kernels --no-cpu --torch "" --min-time 300ms $shapes 2>&1 |
      grep -v ' done$' | tail -n 8 | sed "s/^/cm2 tile=$tile /" | tee -a "$OUT/cm2.txt"
  done
  took cm2-kernels "$OUT/cm2.txt"
  # gemm_cm2 and attention_cm2 take f32 activations only: the encoders'
  # 16-bit activations off in these runs, both ways, so that they compare
  # cm2 with the KHR kernels (the act16 stage measures those).
  export BLIP_LOW_ACTIVATIONS=0
  BLIP_COOPMAT2=1 timeout 75 bin/blip --backend vulkan --precision fp16 bench model --size base --quick --torch python3 --torch-device cuda \
    --only vit,itm,itm-rerank,train-caption 2>&1 | grep -E '^(blip|tensor|workload|vit|itm|train|error)' | sed "s/^/cm2=1 /" | tee -a "$OUT/cm2.txt"
  BLIP_COOPMAT2=0 timeout 35 bin/blip --backend vulkan --precision fp16 bench model --size base --quick --torch "" \
    --only vit,itm,itm-rerank,train-caption 2>&1 | grep -E '^(vit|itm|train|error)' | sed "s/^/cm2=0 /" | tee -a "$OUT/cm2.txt"
  # Where the fp16 ViT's time goes with it (the casts included).
  BLIP_COOPMAT2=1 timeout 30 bin/blip --backend vulkan --precision fp16 bench model --size base --quick --torch "" --only vit --profile 2>&1 |
    grep -E '^(profile|vit|error)' | sed "s/^/cm2=1 /" | tee -a "$OUT/cm2.txt"
  unset BLIP_LOW_ACTIVATIONS
  took cm2-model "$OUT/cm2.txt"
}

stage_ab() {
  echo "== tensor-core GEMM: bin/blip against bin/blip.old, same shapes, same call"
  local shapes="--gemm 4096x4096x4096:01:f16 --gemm 18464x3072x768:01:f16 --gemm 18464x768x3072:01:f16 --gemm 577x768x768:01:f16 --gemm 18464x768x3072:00:f16 --gemm 768x3072x18464:10:f16"
  # Variants: a binary, then the environment it runs under (AB_VARIANTS
  # adds more, e.g. "blip:BLIP_COOP_TILE=small" or "blip:BLIP_COOP_STAGE=k4").
  local variants="blip.old: blip: ${AB_VARIANTS:-}"
  for v in $variants; do
    local b=${v%%:*} e=${v#*:}
    [ -x bin/$b ] || continue
    env $e timeout 40 bin/$b --backend vulkan bench kernels --no-cpu --torch python3 --torch-device cuda --min-time 300ms $shapes 2>&1 |
      grep -v ' done$' | tail -n 7 | sed "s/^/$b $e /" | tee -a "$OUT/ab.txt"
  done
  for diag in 1 2; do
    BLIP_COOP_DIAG=$diag timeout 30 bin/blip --backend vulkan bench kernels --no-cpu --torch "" --min-time 300ms \
      --gemm 4096x4096x4096:01:f16 --gemm 18464x3072x768:01:f16 --gemm 18464x768x3072:01:f16 2>&1 |
      grep -v ' done$' | tail -n 3 | sed "s/^/blip diag=$diag /" | tee -a "$OUT/ab.txt"
  done
  for v in $variants; do
    local b=${v%%:*} e=${v#*:}
    [ -x bin/$b ] || continue
    [ "$v" = "blip:" ] && continue # next to HF below
    env $e timeout 45 bin/$b --backend vulkan --precision fp16 bench model --size base --quick --torch "" --only vit,itm,train-caption 2>&1 |
      grep -E '^(vit|itm|train|error)' | sed "s/^/$b $e /" | tee -a "$OUT/ab.txt"
  done
  # The new build next to HF transformers (its table's ratios).
  timeout 75 bin/blip --backend vulkan --precision fp16 bench model --size base --quick --torch python3 --torch-device cuda --only vit,itm,train-caption 2>&1 |
    grep -E '^(workload|vit|itm|train|error)' | sed "s/^/blip /" | tee -a "$OUT/ab.txt"
  took ab "$OUT/ab.txt"
}

stage_act16() {
  echo "== 16-bit activations (fp16 encoders): on, and off (BLIP_LOW_ACTIVATIONS=0), then on next to HF, then the ViT's profile each way"
  for v in "" "BLIP_LOW_ACTIVATIONS=0"; do
    env $v timeout 60 bin/blip --backend vulkan --precision fp16 bench model --size base --quick --torch "" --only vit,itm,itm-rerank,train-caption 2>&1 |
      grep -E '^(vit|itm|train|error)' | sed "s/^/act16 ${v:-on} /" | tee -a "$OUT/act16.txt"
  done
  timeout 60 bin/blip --backend vulkan --precision fp16 bench model --size base --quick --torch python3 --torch-device cuda --only vit,itm 2>&1 |
    grep -E '^(workload|vit|itm|error)' | sed "s/^/act16 hf /" | tee -a "$OUT/act16.txt"
  for v in "" "BLIP_LOW_ACTIVATIONS=0"; do
    env $v timeout 30 bin/blip --backend vulkan --precision fp16 bench model --size base --quick --torch "" --only vit --profile 2>&1 |
      grep -E '^(profile|vit|error)' | sed "s/^/act16 ${v:-on} /" | tee -a "$OUT/act16.txt"
  done
  took act16 "$OUT/act16.txt"
}

stage_decode() {
  echo "== decoding: linear layers with their LayerNorms, q/k/v projections, the cross query in the attention: one dispatch each (on), the query apart (noq), all apart (off)"
  local on="BLIP_GEMM_NORM=1" noq="BLIP_ATTN_QPROJ=0" off="BLIP_GEMM_NORM=0 BLIP_GEMM_GROUP=0 BLIP_ATTN_ONEPASS=0 BLIP_ATTN_QPROJ=0"
  for prec in fp32 fp16; do
    for v in on noq off; do
      env ${!v} timeout 40 bin/blip --backend vulkan --precision $prec bench model --size base --quick --torch "" \
        --only caption1,beam3,caption-batch 2>&1 | grep -E '^(caption|beam|error)' | sed "s/^/$prec $v /" | tee -a "$OUT/decode.txt"
    done
  done
  for v in on noq off; do
    env ${!v} timeout 40 bin/blip --backend vulkan bench model --size base --quick --torch "" --only caption1 --profile 2>&1 |
      grep -E '^(profile|error)' | sed "s/^/fp32 $v /" | tee -a "$OUT/decode.txt"
  done
  took decode "$OUT/decode.txt"
}

stage_kernels() {
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
}

stage_rows() {
  echo "== decoding's kernels: few-row GEMMs on gemm_rows.comp and attention on the split kernel (=1), or both on the tiled kernels (=0), next to torch"
  for r in 1 0; do
    BLIP_GEMM_ROWS=$r BLIP_ATTN_SPLIT=$r timeout 40 bin/blip --backend vulkan bench kernels --no-cpu --torch python3 --torch-device cuda --min-time 200ms \
      --gemm 1x768x768:01 --gemm 1x3072x768:01 --gemm 1x768x3072:01 --gemm 3x30524x768:01 --gemm 32x768x768:01 --gemm 32x30524x768:01 \
      --gemm 3x2304x768:01:f16 --attention 1x12x1x21x64 --attention 1x12x1x577x64 --attention 32x12x1x577x64 \
      --attention 1x12x1x21x64:f16 --attention 32x12x1x577x64:f16 2>&1 |
      grep -v ' done$' | tail -n 14 | sed "s/^/rows=$r /" | tee -a "$OUT/rows.txt"
  done
  took rows "$OUT/rows.txt"
}

stage_runtime() {
  echo "== the Vulkan runtime tests alone (descriptor pools, staged reads of BAR memory, ordering, replay)"
  BLIP_REQUIRE_VULKAN=1 timeout 40 bin/vk.test -test.count=1 -test.v \
    -test.run 'TestDescriptorPools|TestReadUncachedMapping|TestRecordingOrder|TestWrite|TestFree|TestReplay|TestCapture' 2>&1 |
    grep -E '^(--- |ok|FAIL|PASS)|_test.go' | tail -n 30 | tee "$OUT/runtime.txt"
  took runtime "$OUT/runtime.txt"
}

stage_profile() {
  echo "== GPU time per kernel (bench model --profile; blip alone): fp32 captions and ITM, fp16 ViT and training step"
  timeout 60 bin/blip --backend vulkan bench model --size base --quick --torch "" --only caption1,caption-batch,itm --profile 2>&1 |
    grep -E '^(profile|workload|caption|itm|error)' | tee "$OUT/profile.txt"
  PROFILE16=vit,train-caption stage_profile16 # its wall time covers both
}

# The fp16 workloads in PROFILE16 (default: the ViT alone).
stage_profile16() {
  echo "== GPU time per kernel, fp16: ${PROFILE16:-vit} (bench model --profile; blip alone)"
  timeout 60 bin/blip --backend vulkan --precision fp16 bench model --size base --quick --torch "" --only "${PROFILE16:-vit}" --profile 2>&1 |
    grep -E '^(profile|vit|train|caption|itm|error)' | tee -a "$OUT/profile.txt"
  took profile "$OUT/profile.txt"
}

stage_model32() {
  # In groups, so that a timeout loses one group's table, not all of them.
  echo "== blip bench model next to HF transformers (same command per group), fp32"
  for only in $MODEL_GROUPS; do
    timeout 75 bin/blip --backend vulkan bench model --size base --quick --torch python3 --torch-device cuda --only $only 2>&1 | tail -n 8 | tee -a "$OUT/model_fp32.txt"
    took "model32 $only" "$OUT/model_fp32.txt"
  done
}

stage_model16() {
  echo "== the same with fp16 weights (tensor cores: KHR cooperative matrices where offered)"
  timeout 100 bin/blip --backend vulkan --precision fp16 bench model --size base --quick --torch python3 --torch-device cuda \
    --only caption1,caption-batch,vit,itm,itm-rerank,train-caption 2>&1 | tail -n 11 | tee "$OUT/model_fp16.txt"
  took model16 "$OUT/model_fp16.txt"
}

stage_noreplay() {
  echo "== captions with every plan recorded call by call (BLIP_REPLAY=0), to set against the fp32 table"
  BLIP_REPLAY=0 timeout 35 bin/blip --backend vulkan bench model --size base --quick --torch python3 --torch-device cuda \
    --only caption1,beam3 2>&1 | tail -n 4 | tee "$OUT/model_noreplay.txt"
  took noreplay "$OUT/model_noreplay.txt"
}

for st in $STAGES; do
  if declare -F "stage_$st" >/dev/null; then "stage_$st"; else echo "unknown stage $st"; fi
done
