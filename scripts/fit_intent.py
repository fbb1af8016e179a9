"""Fit the intent classifier on the bundled phrasings and write ``chatpay/nlu/artefacts/intent.npz``.

    python scripts/fit_intent.py            # cross-validate C, fit, write
    python scripts/fit_intent.py --no-write

The phrasings (``chatpay/nlu/lang/<code>/intents*.jsonl``) were written for the purpose, over
many trades, with product names as ``PRODUCT``; no eval text is among them (a test checks).
The regularisation strength is chosen by 5-fold cross-validation on the phrasings alone; the
eval shops' routing cases are scored by ``nox -s evals``, never used here.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chatpay.core.turns import INTENTS  # noqa: E402
from chatpay.nlu.intent import ARTEFACT, FittedIntentClassifier, features, load_training_data  # noqa: E402

MIN_COUNT = 2  # a feature seen once is noise more often than signal


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    console = Console()
    examples = load_training_data()
    feats = [features(e.text) for e in examples]
    y = np.array([INTENTS.index(e.intent) for e in examples])
    table = Table(title=f"5-fold cross-validation on {len(examples)} phrasings")
    table.add_column("C")
    table.add_column("accuracy", justify="right")
    best_c, best_acc = 1.0, -1.0
    folds = StratifiedKFold(5, shuffle=True, random_state=7)
    for c in (0.5, 1.0, 2.0, 4.0, 8.0):
        correct = 0
        for train, test in folds.split(feats, y):
            vocab = build_vocab([feats[i] for i in train])
            model = LogisticRegression(C=c, max_iter=3000)
            model.fit(matrix([feats[i] for i in train], vocab), y[train])
            correct += int((model.predict(matrix([feats[i] for i in test], vocab)) == y[test]).sum())
        acc = correct / len(examples)
        table.add_row(f"{c:g}", f"{acc:.4f}")
        if acc > best_acc + 1e-9:
            best_c, best_acc = c, acc
    console.print(table)
    vocab = build_vocab(feats)
    model = LogisticRegression(C=best_c, max_iter=3000)
    model.fit(matrix(feats, vocab), y)
    labels = [INTENTS[i] for i in model.classes_]
    clf = FittedIntentClassifier(
        labels, vocab, model.coef_.T.astype(np.float32), model.intercept_.astype(np.float32),
        {"fitted": datetime.now(UTC).strftime("%Y-%m-%d"), "examples": len(examples), "C": best_c,
         "cv_accuracy": round(best_acc, 4), "features": len(vocab)},
    )
    console.print(f"C={best_c:g}, {len(vocab)} features, cross-validated accuracy {best_acc:.4f}")
    if not args.no_write:
        out = REPO / "chatpay" / "nlu" / "artefacts" / ARTEFACT
        clf.save(out)
        console.print(f"wrote {out.relative_to(REPO)} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
