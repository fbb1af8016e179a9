"""Fit the intent classifier on the bundled phrasings and write ``chatpay/nlu/artefacts/intent.npz``.

    python scripts/fit_intent.py            # cross-validate C, fit, write
    python scripts/fit_intent.py --no-write

The phrasings (``chatpay/nlu/lang/<code>/intents*.jsonl``) were written for the purpose, over
many trades, with product names as ``PRODUCT``; no eval text is among them (a test checks).
The regularisation strength, and the weight of the sentence encoder's vector beside the sparse
features, are chosen by 5-fold cross-validation on the phrasings alone; the eval shops' routing
cases are scored by ``nox -s evals``, never used here.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.sparse import csr_matrix, hstack
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chatpay.core.turns import INTENTS  # noqa: E402
from chatpay.nlu.intent import ARTEFACT, DenseHead, FittedIntentClassifier, features, load_training_data  # noqa: E402

MIN_COUNT = 2  # a feature seen once is noise more often than signal
# A word is a cue of an action when the phrasings that hold it are mostly that action's: seen in at
# least CUE_MIN phrasings, CUE_SHARE or more of them with that label. Two thirds keeps "add", "remove",
# "checkout" and their typos and synonyms the writers used, and leaves out words every intent uses.
CUE_MIN, CUE_SHARE = 3, 0.66
# "Everything" is a quantifier, not a command (the dialogue issue): phrasings that empty the cart
# say it often, but it asks for nothing by itself ("everything looks good").
QUANTIFIERS = frozenset({"everyth", "everi", "all", "whole", "entir", "все", "вся", "весь", "вообщ"})


def action_cues(examples: list) -> dict[str, list[str]]:
    """Stems that ask for each cart or payment action, read off the labelled phrasings."""
    from collections import Counter, defaultdict

    from chatpay.nlu.intent import ACTIONS, cue_stems

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for e in examples:
        for s in set(cue_stems(e.text)):
            counts[s][e.intent] += 1
    cues: dict[str, list[str]] = {a: [] for a in ACTIONS}
    for s, by_intent in counts.items():
        total = sum(by_intent.values())
        intent, n = by_intent.most_common(1)[0]
        if intent in cues and total >= CUE_MIN and n / total >= CUE_SHARE and s not in QUANTIFIERS:
            cues[intent].append(s)
    return {a: sorted(v) for a, v in cues.items()}


def matrix(texts: list[list[str]], vocab: dict[str, int]) -> csr_matrix:
    rows, cols = [], []
    for i, feats in enumerate(texts):
        for f in set(feats):
            j = vocab.get(f)
            if j is not None:
                rows.append(i)
                cols.append(j)
    return csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts), len(vocab)))


def build_vocab(texts: list[list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for feats in texts:
        for f in set(feats):
            counts[f] = counts.get(f, 0) + 1
    return {f: i for i, f in enumerate(sorted(f for f, n in counts.items() if n >= MIN_COUNT))}


def cross_validate(feats: list[list[str]], y: np.ndarray, vectors: np.ndarray | None, alpha: float, c: float) -> float:
    correct = 0
    for train, test in StratifiedKFold(5, shuffle=True, random_state=7).split(feats, y):
        vocab = build_vocab([feats[i] for i in train])
        x_train, x_test = matrix([feats[i] for i in train], vocab), matrix([feats[i] for i in test], vocab)
        if vectors is not None and alpha:
            x_train = hstack([x_train, csr_matrix(vectors[train] * alpha)]).tocsr()
            x_test = hstack([x_test, csr_matrix(vectors[test] * alpha)]).tocsr()
        model = LogisticRegression(C=c, max_iter=4000).fit(x_train, y[train])
        correct += int((model.predict(x_test) == y[test]).sum())
    return correct / len(y)


# Below this accuracy out of fold, the classifier's pick between its two best readings is no better
# than a guess worth acting on; the dialogue asks with a button for each instead.
ASK_ACCURACY = 0.8


def ask_margin(feats: list[list[str]], y: np.ndarray, vectors: np.ndarray, alpha: float, c: float) -> float:
    """The probability margin between the two best intents below which out-of-fold picks are right
    less than 80% of the time, bin by bin from the closest calls (5-fold cross-validation)."""
    margins = np.zeros(len(y))
    right = np.zeros(len(y), dtype=bool)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=11).split(feats, y):
        vocab = build_vocab([feats[i] for i in train])
        x_train = hstack([matrix([feats[i] for i in train], vocab), csr_matrix(vectors[train] * alpha)]).tocsr()
        x_test = hstack([matrix([feats[i] for i in test], vocab), csr_matrix(vectors[test] * alpha)]).tocsr()
        model = LogisticRegression(C=c, max_iter=4000).fit(x_train, y[train])
        p = model.predict_proba(x_test)
        top2 = np.sort(p, axis=1)[:, -2:]
        margins[test] = top2[:, 1] - top2[:, 0]
        right[test] = model.classes_[p.argmax(axis=1)] == y[test]
    best, width = 0.0, 0.05
    for lo in np.arange(0.0, 1.0, width):  # bins from the closest calls up, while each is a guess
        inside = (margins >= lo) & (margins < lo + width)
        if inside.sum() >= 10 and right[inside].mean() >= ASK_ACCURACY:
            break
        best = float(lo + width)
    return round(best, 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-encoder", action="store_true", help="fit the sparse model only")
    args = ap.parse_args(argv)
    console = Console()
    examples = load_training_data()
    feats = [features(e.text) for e in examples]
    y = np.array([INTENTS.index(e.intent) for e in examples])
    encoder = None
    vectors = None
    if not args.no_encoder:
        from chatpay.adapters.encoders.onnx_minilm import OnnxMiniLMEncoder

        encoder = OnnxMiniLMEncoder()
        with console.status(f"embedding {len(examples)} phrasings"):
            vectors = encoder.encode([e.text for e in examples])
    table = Table(title=f"5-fold cross-validation on {len(examples)} phrasings")
    for col in ("C", "encoder weight", "accuracy"):
        table.add_column(col, justify="right")
    results: dict[tuple[float, float], float] = {}
    for alpha in (0.0, 1.0, 2.0, 4.0) if vectors is not None else (0.0,):
        for c in (1.0, 2.0, 4.0):
            results[(alpha, c)] = cross_validate(feats, y, vectors, alpha, c)
            table.add_row(f"{c:g}", f"{alpha:g}", f"{results[(alpha, c)]:.4f}")
    console.print(table)
    sparse_c = max((c for a, c in results if a == 0.0), key=lambda c: results[(0.0, c)])
    vocab = build_vocab(feats)
    x = matrix(feats, vocab)
    sparse = LogisticRegression(C=sparse_c, max_iter=4000).fit(x, y)
    labels = [INTENTS[i] for i in sparse.classes_]
    meta: dict[str, object] = {"fitted": datetime.now(UTC).strftime("%Y-%m-%d"), "examples": len(examples),
                               "C": sparse_c, "cv_accuracy": round(results[(0.0, sparse_c)], 4), "features": len(vocab)}
    head = None
    if vectors is not None and encoder is not None:
        alpha, c = max((k for k in results if k[0] > 0), key=results.__getitem__)
        both = LogisticRegression(C=c, max_iter=4000).fit(hstack([x, csr_matrix(vectors * alpha)]).tocsr(), y)
        n = len(vocab)
        head = DenseHead(encoder.name, both.coef_[:, :n].T.astype(np.float32), both.coef_[:, n:].T.astype(np.float32),
                         both.intercept_.astype(np.float32), alpha)
        meta.update({"head_encoder": encoder.name, "head_alpha": alpha, "head_C": c,
                     "head_cv_accuracy": round(results[(alpha, c)], 4)})
        console.print(f"with the encoder: weight {alpha:g}, C={c:g}, cross-validated accuracy {results[(alpha, c)]:.4f}")
    if vectors is not None:
        meta["ask_margin"] = ask_margin(feats, y, vectors, float(meta.get("head_alpha", 0.0)),
                                        float(meta.get("head_C", 1.0)))
        console.print(f"ask between two readings when the top two are closer than {meta['ask_margin']:.2f}")
    cues = action_cues(examples)
    meta["cues"] = {a: len(v) for a, v in cues.items()}
    clf = FittedIntentClassifier(labels, vocab, sparse.coef_.T.astype(np.float32),
                                 sparse.intercept_.astype(np.float32), meta, head, cues=cues)
    console.print("action cues: " + ", ".join(f"{a} {len(v)}" for a, v in cues.items()))
    console.print(f"sparse only: C={sparse_c:g}, {len(vocab)} features, cross-validated accuracy "
                  f"{results[(0.0, sparse_c)]:.4f}")
    if not args.no_write:
        out = REPO / "chatpay" / "nlu" / "artefacts" / ARTEFACT
        clf.save(out)
        console.print(f"wrote {out.relative_to(REPO)} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
