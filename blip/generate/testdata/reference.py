#!/usr/bin/python3
"""Writes reference.json: beam search and greedy outputs of a random-table
fake decoder, computed with torch float32 ops following the structure of
transformers 5.x GenerationMixin._beam_search / _sample (written for this
test, not copied). generate's Go tests replay the same table and cases.

Run: /usr/bin/python3 reference.py  (torch, numpy; no transformers needed)
"""
import json
import math

import numpy as np
import torch

ITEMS, V, POS = 3, 16, 24
EOS, PAD, BOS = 1, 0, 15
EOS_BIAS = 0.25

rng = np.random.default_rng(1234)
table = (rng.standard_normal((ITEMS, V, POS, V)) * 2).astype(np.float32)
T = torch.from_numpy(table)


def model_logits(items, seqs):
    """items[r], seqs (rows, cur) -> (rows, V) float32"""
    rows, cur = seqs.shape
    out = torch.stack([T[items[r], int(seqs[r, -1]) % V, cur % POS] for r in range(rows)]).clone()
    out[:, EOS] += torch.tensor(EOS_BIAS * cur, dtype=torch.float32)
    return out


def process(seqs, scores, rep, min_len):
    if rep != 1.0:
        g = torch.gather(scores, 1, seqs)
        g = torch.where(g < 0, g * rep, g / rep)
        scores = scores.scatter(1, seqs, g)
    if seqs.shape[-1] < min_len:
        scores = scores.clone()
        scores[:, EOS] = -math.inf
    return scores


def take(t, idx):
    while idx.dim() < t.dim():
        idx = idx.unsqueeze(-1)
    return torch.take_along_dim(t, idx, dim=1)


def beam(prompts, k, max_len, min_len, lp, early, rep, nret):
    B, P = len(prompts), len(prompts[0])
    items = [b for b in range(B) for _ in range(k)]
    run_seq = torch.full((B, k, max_len), PAD, dtype=torch.long)
    run_seq[:, :, :P] = torch.tensor(prompts)[:, None, :]
    seqs = run_seq.clone()
    run_sc = torch.zeros(B, k)
    run_sc[:, 1:] = -1e9
    fin_sc = torch.full((B, k), -1e9)
    fin = torch.zeros(B, k, dtype=torch.bool)
    glen = torch.zeros(B, k, dtype=torch.long)  # generated length of finished slots
    run_glen = torch.zeros(B, k, dtype=torch.long)
    heur = torch.ones(B, 1, dtype=torch.bool)
    keep = 2 * k
    topmask = torch.cat([torch.ones(k, dtype=torch.bool), torch.zeros(k, dtype=torch.bool)])
    cur = P
    while True:
        flat = run_seq[:, :, :cur].reshape(B * k, cur)
        logp = torch.log_softmax(model_logits(items, flat), dim=-1)
        logp = process(flat, logp, rep, min_len)
        acc = (logp.view(B, k, V) + run_sc[:, :, None]).view(B, k * V)
        tv, ti = torch.topk(acc, keep, dim=-1)
        parent, tok = ti // V, ti % V
        tseq = take(run_seq, parent).clone()
        tseq[:, :, cur] = tok
        tglen = take(run_glen, parent) + 1
        hit = (tok == EOS) | (cur + 1 >= max_len)
        radj = tv + hit.float() * -1e9
        ni = torch.topk(radj, k, dim=-1)[1]
        n_run_seq, n_run_sc, n_run_glen = take(tseq, ni), take(radj, ni), take(tglen, ni)
        just = hit & topmask[None, :]
        s = tv / ((cur + 1 - P) ** lp)
        full = torch.all(fin, dim=-1, keepdim=True) & (early is True)
        s = s + full.float() * -1e9
        s = s + (~heur).float() * -1e9
        s = s + (~just).float() * -1e9
        m_seq = torch.cat([seqs, tseq], 1)
        m_sc = torch.cat([fin_sc, s], 1)
        m_fin = torch.cat([fin, just], 1)
        m_glen = torch.cat([glen, tglen], 1)
        mi = torch.topk(m_sc, k, dim=-1)[1]
        seqs, fin_sc, fin, glen = take(m_seq, mi), take(m_sc, mi), take(m_fin, mi), take(m_glen, mi)
        run_seq, run_sc, run_glen = n_run_seq, n_run_sc, n_run_glen
        cur += 1
        hyp = (max_len - P) if (early == "never" and lp > 0) else (cur - P)
        best = run_sc[:, :1] / (hyp ** lp)
        worst = torch.where(fin, torch.min(fin_sc, dim=1, keepdim=True)[0], torch.tensor(-1e9))
        heur = heur & torch.any(best > worst, dim=-1, keepdim=True)
        go_on = bool(torch.any(heur)) and not (bool(torch.all(fin)) and early is True) and not bool(torch.all(hit))
        if not go_on:
            break
    out_len = P + int(glen[:, :nret].max())
    res = seqs[:, :nret, :out_len].reshape(B * nret, out_len)
    return res.tolist(), fin_sc[:, :nret].reshape(-1).tolist()


def greedy(prompts, max_len, min_len, rep):
    seqs = torch.tensor(prompts)
    items = list(range(len(prompts)))
    unfinished = torch.ones(len(prompts), dtype=torch.long)
    while True:
        sc = process(seqs, model_logits(items, seqs), rep, min_len)
        nxt = torch.argmax(sc, dim=-1)
        nxt = nxt * unfinished + PAD * (1 - unfinished)
        seqs = torch.cat([seqs, nxt[:, None]], 1)
        done = (nxt == EOS) | (seqs.shape[1] >= max_len)
        unfinished = unfinished & ~done
        if unfinished.max() == 0:
            break
    return seqs.tolist()


def main():
    r = np.random.default_rng(99)
    cases = []
    for i in range(60):
        plen = int(r.choice([1, 1, 3]))
        prompts = [[BOS] + [int(x) for x in r.integers(2, 15, plen - 1)] for _ in range(ITEMS)]
        if i % 4 == 0:  # identical prompts, as BLIP's [DEC] for every image
            prompts = [prompts[0]] * ITEMS
        k = int(r.choice([2, 3, 4]))
        c = dict(
            prompts=prompts,
            num_beams=k,
            max_length=int(r.choice([6, 10, 14])) + plen,
            min_length=int(r.choice([0, 0, 4, 8])),
            length_penalty=float(r.choice([1.0, 1.0, 0.0, 2.0, -0.5])),
            early_stopping=[False, True, "never"][i % 3],
            repetition_penalty=float(r.choice([1.0, 1.0, 1.3, 0.8])),
            num_return_sequences=int(r.integers(1, k + 1)),
        )
        c["ids"], c["scores"] = beam(c["prompts"], k, c["max_length"], c["min_length"], c["length_penalty"],
                                     c["early_stopping"], c["repetition_penalty"], c["num_return_sequences"])
        c["greedy_ids"] = greedy(c["prompts"], c["max_length"], c["min_length"], c["repetition_penalty"])
        cases.append(c)
    # repr of a float32 is its shortest round-trip spelling, which keeps the file small
    doc = dict(items=ITEMS, vocab=V, positions=POS, eos=EOS, pad=PAD, bos=BOS, eos_bias=EOS_BIAS,
               table=[float(repr(x)) for x in table.reshape(-1)], cases=cases)
    with open("reference.json", "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
