"""A local intent classifier: multinomial logistic regression over sparse text features.

Trained at start-up (about a second) on phrasings written for the purpose
(``intent_data/train.jsonl``), after delexicalisation, so product names carry no intent
signal. Features: word unigrams and bigrams, character n-grams inside words (for
typos), and a few shape cues (question mark, leading verb, a number before PRODUCT).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from chatpay.core.text import tokens
from chatpay.core.turns import INTENTS

PLACEHOLDERS = ("PRODUCT", "VARIANT")
# train.jsonl: general phrasings over many trades; extra.jsonl: forms it lacked (bare "X?" questions,
# gift and comparison questions, slang for baskets and emptying them), also written for many trades.
# The legacy engine's own copy, kept as it was tuned: 132 of its lines are the demo store's eval texts.
# The fitted classifier (chatpay/nlu/intent.py) trains on chatpay/nlu/lang/*/intents*.jsonl, which hold
# none (tests/core/test_intent_data.py checks).
TRAINING_FILES = ("train.jsonl", "extra.jsonl")
QUESTION_WORDS = frozenset("what which how do does is are can could any anything where when who why".split())


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


def load_training_data() -> list[Example]:
    """The bundled training phrasings."""
    out = []
    for name in TRAINING_FILES:
        raw = resources.files("chatpay.core.intent_data").joinpath(name).read_text(encoding="utf-8")
        for line in raw.splitlines():
            if line.strip():
                obj = json.loads(line)
                out.append(Example(obj["text"], obj["intent"]))
    return out


def _words(text: str) -> list[str]:
    """Tokens with the PRODUCT / VARIANT placeholders kept in upper case."""
    out = []
    for raw in text.replace("?", " ? ").split():
        core = raw.strip(".,!;:()\"'")
        if core in PLACEHOLDERS:
            out.append(core)
        elif raw == "?":
            out.append("?")
        else:
            out.extend(tokens(raw))
    return out


def features(text: str) -> list[str]:
    words = _words(text)
    feats = ["BIAS"]
    plain = [w for w in words if w != "?"]
    for i, w in enumerate(plain):
        feats.append(f"w:{w}")
        if w not in PLACEHOLDERS and len(w) > 3:
            padded = f"<{w}>"
            feats.extend(f"c:{padded[j:j + 4]}" for j in range(len(padded) - 3))
        if i + 1 < len(plain):
            feats.append(f"b:{w}_{plain[i + 1]}")
    if plain:
        feats.append(f"first:{plain[0]}")
        if len(plain) > 1:
            feats.append(f"first2:{plain[0]}_{plain[1]}")
        feats.append(f"last:{plain[-1]}")
    if "?" in words or (plain and plain[0] in QUESTION_WORDS):
        feats.append("shape:question")
    n = len(plain)
    feats.append(f"len:{min(n, 6)}")
    if "PRODUCT" in plain:
        feats.append("has:product")
    return feats


class IntentClassifier:
    """Softmax regression trained with averaged SGD; deterministic for a given seed."""

    def __init__(self, labels: Sequence[str] = INTENTS) -> None:
        self.labels = list(labels)
        self.weights: dict[str, list[float]] = {}

    def fit(self, examples: Iterable[Example], *, epochs: int = 12, lr: float = 0.3, l2: float = 1e-5,
            seed: int = 7) -> IntentClassifier:
        data = [(features(e.text), self.labels.index(e.intent)) for e in examples]
        k = len(self.labels)
        w: dict[str, list[float]] = {}
        total: dict[str, list[float]] = {}  # running sums for averaging
        rng = random.Random(seed)
        step = 0
        for epoch in range(epochs):
            rng.shuffle(data)
            rate = lr / (1 + epoch * 0.5)
            for feats, y in data:
                step += 1
                scores = [0.0] * k
                for f in feats:
                    row = w.get(f)
                    if row is not None:
                        for c in range(k):
                            scores[c] += row[c]
                probs = _softmax(scores)
                for f in feats:
                    row = w.get(f)
                    if row is None:
                        row = w[f] = [0.0] * k
                        total[f] = [0.0] * k
                    acc = total[f]
                    for c in range(k):
                        g = probs[c] - (1.0 if c == y else 0.0) + l2 * row[c]
                        row[c] -= rate * g
                        acc[c] += step * rate * g
        # Averaged perceptron trick: w_avg = w - acc / step.
        self.weights = {f: [row[c] - total[f][c] / step for c in range(k)] for f, row in w.items()}
        return self

    def predict(self, text: str) -> list[tuple[str, float]]:
        """Labels with probabilities, best first."""
        k = len(self.labels)
        scores = [0.0] * k
        for f in features(text):
            row = self.weights.get(f)
            if row is not None:
                for c in range(k):
                    scores[c] += row[c]
        probs = _softmax(scores)
        return sorted(zip(self.labels, probs, strict=True), key=lambda t: -t[1])


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    z = sum(exps)
    return [e / z for e in exps]


_DEFAULT: IntentClassifier | None = None


def _cache_file(examples: list[Example]) -> Path:
    """Where trained weights are kept, keyed by the training data and this module's code."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for e in examples:
        digest.update(f"{e.intent}\t{e.text}\n".encode())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chatpay"
    return base / f"intent-classifier-{digest.hexdigest()[:16]}.json"


def default_classifier() -> IntentClassifier:
    """The classifier trained on the bundled phrasings: once per machine (cached), once per process."""
    global _DEFAULT
    if _DEFAULT is not None:
        return _DEFAULT
    examples = load_training_data()
    clf = IntentClassifier()
    cache = _cache_file(examples)
    try:
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("labels") == clf.labels:
            clf.weights = saved["weights"]
            _DEFAULT = clf
            return clf
    except (OSError, ValueError, KeyError):
        pass  # no cache yet, or an unreadable one: train
    clf.fit(examples)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"labels": clf.labels, "weights": clf.weights}), encoding="utf-8")
        tmp.replace(cache)  # atomic: concurrent workers never read half a file
        for old in cache.parent.glob("intent-classifier-*.json"):
            if old != cache:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only home still works, it just trains each time
    _DEFAULT = clf
    return clf
