"""PyTorch reference for `blip bench model`: the same workloads as blip's,
random weights, timed in this process.

With transformers importable (impl "auto" or "hf") the captioning, ViT,
ITM and caption-training workloads run BlipForConditionalGeneration and
BlipForImageTextRetrieval built from the config.json blip was given;
otherwise (or with impl "plain") they run the plain torch modules of
torch_pretrain.py (written next to this file by blip) with a KV-cached
greedy and beam decoder below. The pretraining step is always
torch_pretrain.py's: transformers has no BLIP pretraining model.

usage: python3 torch_model.py < SPEC.json   (SPEC: see blip/benchmodel)
prints one JSON object on stdout; progress goes to stderr.
"""
import contextlib
import json
import math
import os
import sys
import time
import traceback

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_pretrain as tp  # noqa: E402

spec = json.load(sys.stdin)
dev = spec["device"]
if dev == "cuda":
    if not torch.cuda.is_available():
        sys.exit("torch %s has no CUDA device" % torch.__version__)
    # fp32 means fp32: TF32 would change the precision being compared.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if hasattr(torch, "set_default_device"):
        # torch_pretrain.py's modules create masks and positions with
        # factory calls that name no device.
        torch.set_default_device("cuda")
else:
    torch.set_num_threads(os.cpu_count())  # blip uses every core too

hf = None
if spec["impl"] in ("auto", "hf"):
    try:
        import transformers
        from transformers import BlipConfig, BlipForConditionalGeneration, BlipForImageTextRetrieval
        hf = transformers.__version__
    except Exception as e:  # ImportError, or a broken install
        if spec["impl"] == "hf":
            sys.exit("transformers is not importable: %r" % e)

out = {
    "torch": torch.__version__, "transformers": hf, "impl": "hf" if hf else "plain",
    "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu",
    "threads": torch.get_num_threads(), "workloads": {},
}


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


def timeit(f, warm):
    for _ in range(warm):
        f()
    sync()
    reps = spec["reps"]
    t = time.perf_counter()
    for _ in range(reps):
        f()
    sync()
    return (time.perf_counter() - t) / reps


class Captioner(nn.Module):
    """ViT + BERT decoder with cross-attention in every layer + LM head."""

    def __init__(self, c):
        super().__init__()
        h = c["h"]
        self.vit, self.bert = tp.ViT(c), tp.Bert(c)
        self.head = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.LayerNorm(h, eps=1e-12), nn.Linear(h, c["vocab"]))
        for l in self.bert.layers:  # transformers' BLIP configs and blip's step train without dropout
            l.p = l.attn.p = l.cross.p = 0.0

    def loss(self, img, ids, att):
        logits = self.head(self.bert(ids, att, self.vit(img), causal=True))
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1), label_smoothing=0.1)


class ITM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.vit, self.enc, self.head = tp.ViT(c), tp.Bert(c), nn.Linear(c["h"], 2)

    def forward(self, img, ids, att):
        return self.head(self.enc(ids, att, self.vit(img))[:, 0])


def heads(x, a):
    b, t, h = x.shape
    return x.view(b, t, a.heads, h // a.heads).transpose(1, 2)


def attend(a, x, k, v):
    q = heads(a.q(x), a)
    o = ((q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])).softmax(-1) @ v
    return a.ln(x + a.dense(o.transpose(1, 2).reshape(x.shape)))


@torch.no_grad()
def decode(m, img, beams, tokens, bos, sep):
    """Greedy (beams 1) or beam search, exactly `tokens` new tokens ([SEP]
    is never chosen, as min_new_tokens does), with cached keys and values:
    the image's cross-attention ones computed once, self-attention ones
    grown by one row per step and reordered with the beams."""
    image = m.vit(img)
    b = image.shape[0]
    image = image.repeat_interleave(beams, 0)
    r = image.shape[0]
    layers = m.bert.layers
    cross = [(heads(l.cross.k(image), l.cross), heads(l.cross.v(image), l.cross)) for l in layers]
    ks, vs = [None] * len(layers), [None] * len(layers)
    tok = torch.full((r,), bos, dtype=torch.long, device=image.device)
    score = torch.zeros(b, beams, device=image.device)
    score[:, 1:] = -1e9  # all beams start equal: keep one
    seq = tok[:, None]
    for step in range(tokens):
        x = m.bert.eln(m.bert.word(tok) + m.bert.pos.weight[step])[:, None]
        for i, l in enumerate(layers):
            a = l.attn
            k, v = heads(a.k(x), a), heads(a.v(x), a)
            ks[i] = k if ks[i] is None else torch.cat([ks[i], k], 2)
            vs[i] = v if vs[i] is None else torch.cat([vs[i], v], 2)
            x = attend(a, x, ks[i], vs[i])
            x = attend(l.cross, x, *cross[i])
            x = l.ln(x + l.out(F.gelu(l.inter(x))))
        logits = m.head(x[:, 0]).float()
        logits[:, sep] = -math.inf
        if beams == 1:
            tok = logits.argmax(-1)
            seq = torch.cat([seq, tok[:, None]], 1)
            continue
        lp = logits.log_softmax(-1).view(b, beams, -1) + score[..., None]
        score, idx = lp.view(b, -1).topk(beams, -1)
        vocab = logits.shape[-1]
        rows = (torch.arange(b, device=idx.device)[:, None] * beams + idx // vocab).view(-1)
        tok = (idx % vocab).view(-1)
        ks = [k.index_select(0, rows) for k in ks]
        vs = [v.index_select(0, rows) for v in vs]
        seq = torch.cat([seq.index_select(0, rows), tok[:, None]], 1)
    return seq


def build(kind, model, dtype):
    c = spec["models"][model]
    if hf:
        cfg = BlipConfig(**{k: v for k, v in c["config"].items() if k != "architectures"})
        cls = BlipForImageTextRetrieval if kind in ("itm", "rerank") else BlipForConditionalGeneration
        m = cls(cfg)
    else:
        m = ITM(c["sizes"]) if kind in ("itm", "rerank") else Captioner(c["sizes"])
    return m.to(dev).to(dtype)


def image(n, size, dtype):
    return torch.randn(n, 3, size, size, device=dev, dtype=dtype)


def text(n, t, c, dtype):
    ids = torch.randint(4, c["vocab"] - 2, (n, t), device=dev)
    return ids, torch.ones(n, t, device=dev, dtype=dtype)


def run_rerank(w, m, dtype):
    """One image's top texts re-ranked by ITM as BLIP's evaluation does it
    (salesforce/BLIP train_retrieval.py): the image's ViT states computed
    once (untimed: retrieval has them from the ITC stage), then the text
    encoder over the pairs with those states repeated per pair, and the
    ITM head."""
    c = spec["models"][w["model"]]["sizes"]
    ids, att = text(w["batch"], w["textlen"], c, dtype)
    with torch.no_grad():
        x = image(1, c["size"], dtype)
        if hf:
            states = m.vision_model(pixel_values=x)[0].expand(w["batch"], -1, -1)
            satt = torch.ones(states.shape[:-1], dtype=torch.long, device=dev)

            def f():
                h = m.text_encoder(input_ids=ids, attention_mask=att.long(), encoder_hidden_states=states,
                                   encoder_attention_mask=satt, return_dict=False)[0]
                return m.itm_head(h[:, 0])
        else:
            states = m.vit(x).expand(w["batch"], -1, -1)

            def f():
                return m.head(m.enc(ids, att, states)[:, 0])
        return {"seconds": timeit(f, 1)}


def run_infer(w, m, dtype):
    c = spec["models"][w["model"]]["sizes"]
    if w["kind"] == "rerank":
        return run_rerank(w, m, dtype)
    x = image(w["batch"], c["size"], dtype)
    with torch.no_grad():
        if w["kind"] == "generate":
            new = []

            def f():
                if hf:
                    s = m.generate(pixel_values=x, num_beams=w["beams"], max_new_tokens=w["tokens"], min_new_tokens=w["tokens"])
                else:
                    s = decode(m, x, w["beams"], w["tokens"], c["bos"], c["sep"])
                new.append(s.shape[1] - 1)
            sec = timeit(f, 1)
            return {"seconds": sec, "new_tokens": min(new)}
        if w["kind"] == "vision":
            return {"seconds": timeit(lambda: m.vision_model(pixel_values=x) if hf else m.vit(x), 1 if dev == "cpu" else 2)}
        ids, att = text(w["batch"], w["textlen"], c, dtype)
        if hf:
            return {"seconds": timeit(lambda: m(input_ids=ids, pixel_values=x, attention_mask=att.long(), use_itm_head=True), 1)}
        return {"seconds": timeit(lambda: m(x, ids, att), 1)}


def mixed(on):
    return torch.autocast("cuda", dtype=torch.bfloat16) if on else contextlib.nullcontext()


def run_train(w, m, autocast):
    c = spec["models"][w["model"]]["sizes"]
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.05)
    x = image(w["batch"], c["size"], torch.float32)
    ids, att = text(w["batch"], w["textlen"], c, torch.float32)
    ids[:, 0] = c["bos"]

    def step():
        opt.zero_grad(set_to_none=True)
        with mixed(autocast):
            loss = m(pixel_values=x, input_ids=ids, labels=ids).loss if hf else m.loss(x, ids, att)
        loss.backward()
        opt.step()
    return {"seconds": timeit(step, 1 if dev == "cpu" else 2)}


def run_pretrain(w):
    c = dict(spec["models"][w["model"]]["sizes"], queue=w["queue"])
    torch.manual_seed(0)
    m = tp.BlipPretrain(c).to(dev)
    m.train()
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=3e-4, weight_decay=0.05)
    b, t = w["batch"], w["textlen"]
    x = image(b, c["size"], torch.float32)
    ids = torch.randint(4, c["vocab"] - 2, (b, t), device=dev)
    ids[:, 0] = 2
    att = torch.ones(b, t, dtype=torch.long, device=dev)
    for i in range(b):  # varied lengths, as blip's batch
        n = 8 + (i * 7) % (t - 8)
        ids[i, n - 1], ids[i, n:], att[i, n:] = 3, 0, 0

    def step():
        opt.zero_grad()
        ita, itm, lm = m(x, ids, att, 0.4, c["vocab"] - 1, c["vocab"] - 2)
        (ita + itm + lm).backward()
        opt.step()
    return {"seconds": timeit(step, 1 if dev == "cpu" else 2)}


# Variants: fp32 everywhere; on CUDA also fp16 inference and bf16 autocast
# caption training, as hf_anchor.py times them (torch_pretrain.py's queue
# updates are fp32-only).
variants = {"infer": ["fp32"] + (["fp16"] if dev == "cuda" else []),
            "train": ["fp32"] + (["bf16-autocast"] if dev == "cuda" else []), "pretrain": ["fp32"]}
groups = {}
for w in spec["workloads"]:
    kind = w["kind"] if w["kind"] in ("train", "pretrain") else "infer"
    groups.setdefault((kind, w["model"]), []).append(w)
for (kind, model), ws in groups.items():
    training = kind != "infer"
    for var in variants[kind]:
        dtype = torch.float16 if var == "fp16" else torch.float32
        m = None
        for w in ws:
            r = out["workloads"].setdefault(w["name"], {"variants": {}})
            pre = w["kind"] == "pretrain"
            r["impl"] = "plain (torch_pretrain.py)" if pre else ("transformers " + hf if hf else "plain")
            try:
                if pre:
                    res = run_pretrain(w)
                else:
                    if m is None:
                        torch.manual_seed(0)
                        m = build(w["kind"], model, dtype)
                        if not training:
                            m.eval()
                    res = run_train(w, m, var != "fp32") if training else run_infer(w, m, dtype)
                r["variants"][var] = res
            except Exception as e:
                traceback.print_exc()
                r["variants"][var] = {"error": repr(e)[:300]}
            print("torch", w["name"], var, json.dumps(r["variants"][var]), file=sys.stderr, flush=True)
        del m
        if dev == "cuda":
            torch.cuda.empty_cache()

json.dump(out, sys.stdout)
print()
