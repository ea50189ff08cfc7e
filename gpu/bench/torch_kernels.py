"""The PyTorch reference for `blip bench kernels --torch`.

Reads the case list as JSON on stdin (what each blip benchmark case computes)
and prints one JSON object {case: seconds_per_call} on stdout, timed the same
way: one warm-up call, then repeated calls for at least --min-time seconds.
fp32 throughout; on CUDA, TF32 is off so that the comparison is fp32 to fp32.
"""
import argparse, json, os, sys, time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--device", default="cpu")
ap.add_argument("--min-time", type=float, default=0.5)
args = ap.parse_args()
dev = torch.device(args.device)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
if dev.type == "cpu":
    torch.set_num_threads(os.cpu_count())  # blip uses every core too


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def build(t):
    op = t["op"]
    r = lambda *s: torch.randn(*s, device=dev)
    if op == "gemm" and t.get("dtype"):
        # 16-bit storage: both operands in that type, as torch.matmul runs
        # half models (fp32 accumulation on tensor cores).
        dt = getattr(torch, t["dtype"])
        r = lambda *s: torch.randn(*s, device=dev).to(dt)
    if op == "gemm":
        m, n, k = t["m"], t["n"], t["k"]
        if t.get("trans_a"):
            # A stored (K, M), as blip's TransA: the product reads a.t().
            at, b = r(k, m), (r(n, k).t() if t["trans_b"] else r(k, n))
            return lambda: at.t() @ b
        a = r(m, k)
        b = r(n, k) if t["trans_b"] else r(k, n)
        bias = r(n) if t["bias"] else None
        if t["trans_b"]:
            f = lambda: F.linear(a, b, bias)
        else:
            f = (lambda: torch.addmm(bias, a, b)) if bias is not None else (lambda: a @ b)
        if t["gelu"]:
            g = f
            f = lambda: F.gelu(g())
        return f
    if op == "softmax":
        x = r(t["rows"], t["cols"])
        return lambda: torch.softmax(x, -1)
    if op == "layernorm":
        x, w, b = r(t["rows"], t["cols"]), r(t["cols"]), r(t["cols"])
        return lambda: F.layer_norm(x, (t["cols"],), w, b, 1e-12)
    if op == "reduce":
        x = r(t["rows"], t["cols"])
        return lambda: x.sum(-1)
    if op == "gelu":
        x = r(t["n"])
        return lambda: F.gelu(x)
    if op == "add":
        x, y = r(t["n"]), r(t["n"])
        return lambda: x + y
    if op == "attention" and t.get("dtype"):
        dt = getattr(torch, t["dtype"])  # half: flash attention on CUDA
        r = lambda *s: torch.randn(*s, device=dev).to(dt)
    if op == "attention":
        # (B, H, T, D) tensors; fp32 picks the memory-efficient kernel on CUDA.
        # PyTorch < 2.0 has no fused attention: the reference is then what a
        # PyTorch model of that version runs (matmul, softmax, matmul).
        # tq (default t) queries over t keys: decoding steps have tq = 1.
        q = r(t["b"], t["h"], t.get("tq", t["t"]), t["d"])
        k, v = (r(t["b"], t["h"], t["t"], t["d"]) for _ in range(2))
        sdpa = getattr(F, "scaled_dot_product_attention", None)
        if sdpa is None:
            scale = t["d"] ** -0.5
            sdpa = lambda q, k, v: torch.softmax((q @ k.transpose(-1, -2)) * scale, -1) @ v
        if not t["backward"]:
            return lambda: sdpa(q, k, v)
        q, k, v = (x.requires_grad_() for x in (q, k, v))
        do = r(t["b"], t["h"], t["t"], t["d"])

        def fwd_bwd():
            with torch.enable_grad():
                o = sdpa(q, k, v)
                return torch.autograd.grad(o, (q, k, v), do)

        return fwd_bwd
    raise ValueError(op)


def timeit(f):
    with torch.no_grad():
        f()
        sync()
        total, n, batch = 0.0, 0, 1
        while total < args.min_time or n < 2:
            t = time.perf_counter()
            for _ in range(batch):
                f()
            sync()
            total += time.perf_counter() - t
            n += batch
            per = total / n
            batch = max(1, min(int((args.min_time - total) / per) if per > 0 else 1, 4 * batch))
        return total / n


out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(dev), "cases": {}}
if dev.type == "cuda":
    out["device"] = torch.cuda.get_device_name(0)
for c in json.load(sys.stdin):
    try:
        out["cases"][c["name"]] = timeit(build(c["torch"]))
    except Exception as e:  # report, keep going
        out["cases"][c["name"]] = None
        print(f"torch_kernels: {c['name']}: {e}", file=sys.stderr)
json.dump(out, sys.stdout)
