#!/usr/bin/env python3
"""Writes testdata/metrics/expected.json: the reference numbers for the Go
package data/metrics, computed by the ORIGINAL Python evaluation code.

Sources (not committed; fetch them and pass their location):

  pycocoevalcap  https://github.com/salaniz/pycocoevalcap (the code the
                 `pycocoevalcap` PyPI package installs; BLIP's
                 coco_caption_eval imports it), commit
                 ad63453cfab57a81a02b2949b17a91fab1c3df77: bleu/bleu.py,
                 bleu/bleu_scorer.py, cider/cider.py, cider/cider_scorer.py.
  VQA eval       https://github.com/GT-Vision-Lab/VQA, commit
                 a013f0043c1e2cdc995922dfe257f7149aa9af06:
                 PythonEvaluationTools/vqaEvaluation/vqaEval.py.

Each source is either a git directory (the files are extracted with
`git --git-dir=DIR show COMMIT:path` into a temporary directory) or a plain
checkout. Rerun from the repository root:

  /usr/bin/python3 testdata/metrics/make_reference.py \\
      --coco /path/to/pycocoevalcap.git --vqa /path/to/VQA.git \\
      [--python2 /path/to/python2.7]

It needs Python 3 with numpy (cider_scorer imports it). The scorer files are
imported unchanged. vqaEval.py is Python 2 source: its two `print "..."`
statements are rewritten to print(...) calls so Python 3 can load it (a
mechanical change checked below: exactly those two lines differ). With
--python2 the unmodified file is also run under that interpreter and the
results must be identical.

Inputs: captions.json (sets of candidates/references, already tokenised) and
vqa.json (predictions with human answers; strings to normalise), both next
to this script.
"""

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile

COCO_COMMIT = "ad63453cfab57a81a02b2949b17a91fab1c3df77"
VQA_COMMIT = "a013f0043c1e2cdc995922dfe257f7149aa9af06"
COCO_FILES = ["bleu/bleu.py", "bleu/bleu_scorer.py", "cider/cider.py", "cider/cider_scorer.py"]
VQA_FILE = "PythonEvaluationTools/vqaEvaluation/vqaEval.py"

HERE = os.path.dirname(os.path.abspath(__file__))


def read_source(src, commit, path):
    """Returns the bytes of path at commit from a git dir, or from a checkout."""
    if os.path.isdir(os.path.join(src, "objects")) or os.path.isfile(os.path.join(src, "HEAD")):
        return subprocess.check_output(["git", "--git-dir=" + src, "show", commit + ":" + path])
    with open(os.path.join(src, path), "rb") as f:
        return f.read()


# Runs the official VQAEval on the cases; Python 2 and 3 compatible. Reads
# {"module": dir, "cases": [...], "normalize": [...]} as JSON on stdin.
VQA_DRIVER = r'''
import json, sys
cfg = json.loads(sys.stdin.read())
sys.path.insert(0, cfg["module"])
from vqaEval import VQAEval

class FakeVQA(object):
    def __init__(self, qa):
        self.qa = qa
    def getQuesIds(self):
        return sorted(self.qa.keys())

gts, res = {}, {}
for i, c in enumerate(cfg["cases"]):
    gts[i] = {"question_type": "none of the above", "answer_type": "other",
              "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1}
                          for j, a in enumerate(c["answers"])]}
    res[i] = {"answer": c["pred"]}

class RawEval(VQAEval):
    """Records each question's accuracy before the official rounding."""
    def setEvalQA(self, quesId, acc):
        self.rawQA = getattr(self, "rawQA", {})
        self.rawQA[quesId] = acc
        VQAEval.setEvalQA(self, quesId, acc)

ev = RawEval(FakeVQA(gts), FakeVQA(res), n=2)
real_stdout = sys.stdout
sys.stdout = sys.stderr  # evaluate() prints progress
ev.evaluate()
sys.stdout = real_stdout

norm = VQAEval(FakeVQA({}), FakeVQA({}))
tables = {"contractions": dict(norm.contractions), "manualMap": dict(norm.manualMap),
          "articles": list(norm.articles), "punct": list(norm.punct)}
normalized = []
for s in cfg["normalize"]:
    t = s.replace("\n", " ").replace("\t", " ").strip()
    normalized.append([s, norm.processDigitArticle(norm.processPunctuation(t))])

out = {"accuracy": dict((c["name"], ev.rawQA[i]) for i, c in enumerate(cfg["cases"])),
       "overall_percent": ev.accuracy["overall"],
       "normalize": normalized, "tables": tables}
sys.stdout.write(json.dumps(out, sort_keys=True))
'''


def run_vqa(python, module_dir, cases, norms):
    cfg = json.dumps({"module": module_dir, "cases": cases, "normalize": norms})
    out = subprocess.run([python, "-c", VQA_DRIVER], input=cfg.encode(), stdout=subprocess.PIPE, check=True)
    return json.loads(out.stdout.decode())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coco", required=True, help="salaniz/pycocoevalcap git dir or checkout")
    ap.add_argument("--coco-commit", default=COCO_COMMIT)
    ap.add_argument("--vqa", required=True, help="GT-Vision-Lab/VQA git dir or checkout")
    ap.add_argument("--vqa-commit", default=VQA_COMMIT)
    ap.add_argument("--python2", help="also run the unmodified vqaEval.py under this Python 2")
    ap.add_argument("--out", default=os.path.join(HERE, "expected.json"))
    args = ap.parse_args()

    with open(os.path.join(HERE, "captions.json")) as f:
        captions = json.load(f)
    with open(os.path.join(HERE, "vqa.json")) as f:
        vqa = json.load(f)

    with tempfile.TemporaryDirectory() as tmp:
        # pycocoevalcap as a package (the modules use relative imports).
        pkg = os.path.join(tmp, "pycocoevalcap")
        for path in COCO_FILES:
            dst = os.path.join(pkg, path)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(read_source(args.coco, args.coco_commit, path))
        for d in [pkg, os.path.join(pkg, "bleu"), os.path.join(pkg, "cider")]:
            open(os.path.join(d, "__init__.py"), "a").close()
        sys.path.insert(0, tmp)
        Bleu = importlib.import_module("pycocoevalcap.bleu.bleu").Bleu
        Cider = importlib.import_module("pycocoevalcap.cider.cider").Cider

        cap_out = {}
        for s in captions["sets"]:
            res, gts = s["candidates"], s["references"]
            ids = list(gts.keys())
            res = {k: res[k] for k in ids}
            bleu, bleu_items = Bleu(4).compute_score(gts, res, verbose=0)
            cider, cider_items = Cider().compute_score(gts, res)
            cap_out[s["name"]] = {
                "bleu": [float(x) for x in bleu],
                "bleu_per_item": {k: [float(bleu_items[n][i]) for n in range(4)] for i, k in enumerate(ids)},
                "cider": float(cider),
                "cider_per_item": {k: float(cider_items[i]) for i, k in enumerate(ids)},
            }

        # vqaEval.py: original (for Python 2) and print-fixed (for Python 3).
        src = read_source(args.vqa, args.vqa_commit, VQA_FILE).decode("utf-8")
        fixed, n = re.subn(r'^(\s*)print (".*")[ \t]*$', r"\1print(\2)", src, flags=re.M)
        assert n == 2, "expected two print statements in vqaEval.py, found %d" % n
        d3 = os.path.join(tmp, "vqa3")
        os.makedirs(d3)
        with open(os.path.join(d3, "vqaEval.py"), "w", encoding="utf-8") as f:
            f.write(fixed)
        vqa_out = run_vqa(sys.executable, d3, vqa["cases"], vqa["normalize"])
        if args.python2:
            d2 = os.path.join(tmp, "vqa2")
            os.makedirs(d2)
            with open(os.path.join(d2, "vqaEval.py"), "w", encoding="utf-8") as f:
                f.write(src)
            vqa_py2 = run_vqa(args.python2, d2, vqa["cases"], vqa["normalize"])
            assert vqa_py2 == vqa_out, "Python 2 and Python 3 runs of vqaEval.py differ"

    expected = {
        "provenance": {
            "pycocoevalcap": {"repo": "https://github.com/salaniz/pycocoevalcap", "commit": args.coco_commit,
                              "files": COCO_FILES, "calls": "Bleu(4).compute_score(gts, res) (option closest), Cider().compute_score(gts, res)"},
            "vqa": {"repo": "https://github.com/GT-Vision-Lab/VQA", "commit": args.vqa_commit, "file": VQA_FILE,
                    "calls": "VQAEval.evaluate (per-question accuracy before rounding); processDigitArticle(processPunctuation(s))",
                    "python2_checked": bool(args.python2)},
            "python": sys.version.split()[0],
            "numpy": importlib.import_module("numpy").__version__,
        },
        "captions": cap_out,
        "vqa": vqa_out,
    }
    with open(args.out, "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
