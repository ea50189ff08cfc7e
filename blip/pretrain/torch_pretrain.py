"""PyTorch reference timing of one BLIP pretraining step (blip bench pretrain).

The same computation as blip's step, written with plain torch modules after
salesforce/BLIP's blip_pretrain.py and med.py (transformers is not needed):
ViT, a BERT text encoder with cross-attention, a decoder sharing every weight
but self-attention, momentum encoders (0.995) and feature queues, ITC with
momentum distillation, ITM with hard negatives, LM with label smoothing,
AdamW. Random weights and data: only the time means anything.

usage: python3 torch_pretrain.py JSON  (a JSON object of sizes; see main)
prints one JSON line: seconds_per_step, samples_per_sec, params, threads.
"""
import copy
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BertAttention(nn.Module):
    def __init__(self, h, kvw, heads, p):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(h, h), nn.Linear(kvw, h), nn.Linear(kvw, h)
        self.dense, self.ln, self.heads, self.p = nn.Linear(h, h), nn.LayerNorm(h, eps=1e-12), heads, p

    def forward(self, x, kv, mask=None, causal=False):
        b, t, h = x.shape
        n, d = self.heads, h // self.heads
        q = self.q(x).view(b, t, n, d).transpose(1, 2)
        k = self.k(kv).view(b, -1, n, d).transpose(1, 2)
        v = self.v(kv).view(b, -1, n, d).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(d)
        if mask is not None:
            s = s + mask
        if causal:
            s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, h)
        return self.ln(x + F.dropout(self.dense(a), self.p, self.training))


class BertLayer(nn.Module):
    def __init__(self, h, vw, heads, inter, p, shared=None):
        super().__init__()
        self.attn = BertAttention(h, h, heads, p)
        if shared is None:
            self.cross = BertAttention(h, vw, heads, p)
            self.inter, self.out, self.ln = nn.Linear(h, inter), nn.Linear(inter, h), nn.LayerNorm(h, eps=1e-12)
        else:  # decoder: everything but self-attention is the encoder's
            self.cross, self.inter, self.out, self.ln = shared.cross, shared.inter, shared.out, shared.ln
        self.p = p

    def forward(self, x, mask, image=None, causal=False):
        x = self.attn(x, x, mask, causal)
        if image is not None:
            x = self.cross(x, image)
        return self.ln(x + F.dropout(self.out(F.gelu(self.inter(x))), self.p, self.training))


class Bert(nn.Module):
    def __init__(self, c, shared=None):
        super().__init__()
        h = c["h"]
        if shared is None:
            self.word, self.pos = nn.Embedding(c["vocab"], h), nn.Embedding(c["maxpos"], h)
            self.eln = nn.LayerNorm(h, eps=1e-12)
        else:
            self.word, self.pos, self.eln = shared.word, shared.pos, shared.eln
        self.layers = nn.ModuleList([BertLayer(h, c["vw"], c["heads"], c["inter"], 0.1, None if shared is None else shared.layers[i])
                                     for i in range(c["layers"])])

    def forward(self, ids, att, image=None, causal=False):
        t = ids.shape[1]
        x = F.dropout(self.eln(self.word(ids) + self.pos(torch.arange(t))), 0.1, self.training)
        mask = (1.0 - att[:, None, None, :]) * -10000.0
        for l in self.layers:
            x = l(x, mask, image, causal)
        return x


class ViT(nn.Module):
    def __init__(self, c):
        super().__init__()
        w, p = c["vw"], c["patch"]
        self.patch = nn.Conv2d(3, w, p, p)
        n = (c["size"] // p) ** 2
        self.cls, self.pos = nn.Parameter(torch.zeros(1, 1, w)), nn.Parameter(torch.zeros(1, n + 1, w))
        self.blocks = nn.ModuleList()
        for _ in range(c["vlayers"]):
            self.blocks.append(nn.ModuleDict(dict(n1=nn.LayerNorm(w, eps=1e-6), qkv=nn.Linear(w, 3 * w), proj=nn.Linear(w, w),
                                                  n2=nn.LayerNorm(w, eps=1e-6), fc1=nn.Linear(w, c["vinter"]), fc2=nn.Linear(c["vinter"], w))))
        self.norm, self.heads = nn.LayerNorm(w, eps=1e-6), c["vheads"]

    def forward(self, img):
        x = self.patch(img).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        b, t, w = x.shape
        n, d = self.heads, w // self.heads
        for blk in self.blocks:
            qkv = blk["qkv"](blk["n1"](x)).view(b, t, 3, n, d).permute(2, 0, 3, 1, 4)
            a = ((qkv[0] @ qkv[1].transpose(-1, -2)) / math.sqrt(d)).softmax(-1) @ qkv[2]
            x = x + blk["proj"](a.transpose(1, 2).reshape(b, t, w))
            x = x + blk["fc2"](F.gelu(blk["fc1"](blk["n2"](x))))
        return self.norm(x)


class BlipPretrain(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, vw, e = c["h"], c["vw"], c["embed"]
        self.vit, self.enc = ViT(c), Bert(c)
        self.dec = Bert(c, shared=self.enc)
        self.head = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.LayerNorm(h, eps=1e-12), nn.Linear(h, c["vocab"]))
        self.vproj, self.tproj, self.itm = nn.Linear(vw, e), nn.Linear(h, e), nn.Linear(h, 2)
        self.temp = nn.Parameter(0.07 * torch.ones([]))
        self.vit_m, self.enc_m = copy.deepcopy(self.vit), copy.deepcopy(self.enc)
        self.vproj_m, self.tproj_m = copy.deepcopy(self.vproj), copy.deepcopy(self.tproj)
        self.pairs = [(self.vit, self.vit_m), (self.enc, self.enc_m), (self.vproj, self.vproj_m), (self.tproj, self.tproj_m)]
        for _, m in self.pairs:
            for p in m.parameters():
                p.requires_grad = False
        q = c["queue"]
        self.register_buffer("iq", F.normalize(torch.randn(e, q), dim=0))
        self.register_buffer("tq", F.normalize(torch.randn(e, q), dim=0))
        self.ptr = 0

    def forward(self, img, ids, att, alpha, enc_id, dec_id):
        with torch.no_grad():
            self.temp.clamp_(0.001, 0.5)
        image = self.vit(img)
        ifeat = F.normalize(self.vproj(image[:, 0]), dim=-1)
        tfeat = F.normalize(self.tproj(self.enc(ids, att)[:, 0]), dim=-1)
        with torch.no_grad():
            for m, mm in self.pairs:
                for p, pm in zip(m.parameters(), mm.parameters()):
                    pm.data = pm.data * 0.995 + p.data * 0.005
            ifeat_m = F.normalize(self.vproj_m(self.vit_m(img)[:, 0]), dim=-1)
            tfeat_m = F.normalize(self.tproj_m(self.enc_m(ids, att)[:, 0]), dim=-1)
            iall, tall = torch.cat([ifeat_m.t(), self.iq], 1), torch.cat([tfeat_m.t(), self.tq], 1)
            tgt = torch.zeros(ifeat.shape[0], iall.shape[1])
            tgt.fill_diagonal_(1)
            i2t_t = alpha * (ifeat_m @ tall / self.temp).softmax(1) + (1 - alpha) * tgt
            t2i_t = alpha * (tfeat_m @ iall / self.temp).softmax(1) + (1 - alpha) * tgt
        si2t, st2i = ifeat @ tall / self.temp, tfeat @ iall / self.temp
        ita = (-(F.log_softmax(si2t, 1) * i2t_t).sum(1).mean() - (F.log_softmax(st2i, 1) * t2i_t).sum(1).mean()) / 2
        b = img.shape[0]
        with torch.no_grad():  # dequeue and enqueue
            q = self.iq.shape[1]
            idx = (torch.arange(b) + self.ptr) % q
            self.iq[:, idx], self.tq[:, idx] = ifeat_m.t(), tfeat_m.t()
            self.ptr = (self.ptr + b) % q
        eids = ids.clone()
        eids[:, 0] = enc_id
        with torch.no_grad():
            wt2i = F.softmax(st2i[:, :b], 1) + 1e-4
            wt2i.fill_diagonal_(0)
            wi2t = F.softmax(si2t[:, :b], 1) + 1e-4
            wi2t.fill_diagonal_(0)
        neg_i = torch.multinomial(wt2i, 1).squeeze(1)
        neg_t = torch.multinomial(wi2t, 1).squeeze(1)
        t_all = torch.cat([eids, eids, eids[neg_t]])
        a_all = torch.cat([att, att, att[neg_t]])
        i_all = torch.cat([image, image[neg_i], image])
        out = self.enc(t_all, a_all, i_all)[:, 0]
        labels = torch.cat([torch.ones(b, dtype=torch.long), torch.zeros(2 * b, dtype=torch.long)])
        itm = F.cross_entropy(self.itm(out), labels)
        dids = ids.clone()
        dids[:, 0] = dec_id
        target = dids.masked_fill(att == 0, -100)
        logits = self.head(self.dec(dids, att, image, causal=True))
        lm = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), target[:, 1:].reshape(-1), label_smoothing=0.1)
        return ita, itm, lm


def main():
    c = json.loads(sys.argv[1])
    torch.set_num_threads(os.cpu_count())  # blip uses every core too
    torch.manual_seed(0)
    model = BlipPretrain(c)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4, weight_decay=0.05)
    b, t = c["batch"], c["textlen"]
    img = torch.randn(b, 3, c["size"], c["size"])
    ids = torch.randint(4, c["vocab"] - 2, (b, t))
    ids[:, 0] = 2
    att = torch.ones(b, t, dtype=torch.long)
    for i in range(b):
        n = 8 + (i * 7) % (t - 8)
        ids[i, n - 1] = 3
        ids[i, n:] = 0
        att[i, n:] = 0

    def step():
        opt.zero_grad()
        ita, itm, lm = model(img, ids, att, 0.4, c["vocab"] - 1, c["vocab"] - 2)
        (ita + itm + lm).backward()
        opt.step()

    step()
    n = c["steps"]
    start = time.perf_counter()
    for _ in range(n):
        step()
    sec = (time.perf_counter() - start) / n
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(json.dumps(dict(seconds_per_step=sec, samples_per_sec=b / sec, params=params, threads=torch.get_num_threads(),
                          torch=torch.__version__)))


if __name__ == "__main__":
    main()
