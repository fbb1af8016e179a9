"""The intent classifier: a logistic regression fitted offline, shipped as an artefact.

Features are read from the delexicalised message (product names replaced by ``PRODUCT``,
variant values by ``VARIANT``), so no shop's vocabulary carries intent: Snowball stems and
stem bigrams, character n-grams inside words (typos, Russian endings), the first and last
words, and the message's shape. ``scripts/fit_intent.py`` fits it on the phrasings under
``lang/<code>/intents*.jsonl`` (written for the purpose, never eval text) with scikit-learn and
writes ``artefacts/intent.npz``; loading needs numpy alone and trains nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from rapidfuzz.distance import DamerauLevenshtein

from chatpay.core.errors import ConfigError
from chatpay.core.turns import INTENTS
from chatpay.nlu.text import LANGUAGES, stem, tokens

PLACEHOLDERS = {"PRODUCT": "‹p›", "VARIANT": "‹v›"}
QUESTION_STEMS = frozenset(stem(w) for w in (
    "what which how do does is are can could any where when who why whose "
    "что какой какая какие как где когда можно есть ли сколько почему чем кто"
).split())
ARTEFACT = "intent.npz"
ACTIONS = ("cart_add", "cart_remove", "cart_clear", "payments", "chitchat")


def cue_stems(text: str) -> list[str]:
    """The stems that may ask for an action: every word but the placeholders."""
    return [stem(w) for w in words(text) if not w.startswith("‹")]


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


def training_files() -> list[tuple[str, str]]:
    """(language, file name) of every bundled training file."""
    out = []
    for lang in LANGUAGES:
        folder = resources.files("chatpay.nlu").joinpath("lang", lang)
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.startswith("intents") and entry.name.endswith(".jsonl"):
                out.append((lang, entry.name))
    return out


def load_training_data() -> list[Example]:
    """Every bundled phrasing, all languages."""
    out = []
    for lang, name in training_files():
        raw = resources.files("chatpay.nlu").joinpath("lang", lang, name).read_text(encoding="utf-8")
        for line in raw.splitlines():
            if line.strip():
                obj = json.loads(line)
                out.append(Example(obj["text"], obj["intent"]))
    return out


def words(text: str) -> list[str]:
    """Folded tokens, with the placeholders kept as markers of their own."""
    out: list[str] = []
    for raw in text.split():
        core = raw.strip(".,!?;:()\"'«»")
        if core in PLACEHOLDERS:
            out.append(PLACEHOLDERS[core])
        else:
            out.extend(tokens(raw))
    return out


def features(text: str) -> list[str]:
    ws = words(text)
    stems = [w if w.startswith("‹") else stem(w) for w in ws]
    feats = ["bias"]
    for i, s in enumerate(stems):
        feats.append(f"w:{s}")
        if i + 1 < len(stems):
            feats.append(f"b:{s}_{stems[i + 1]}")
        w = ws[i]
        if not w.startswith("‹") and len(w) > 2 and not w[0].isdigit():
            padded = f"<{w}>"
            for n in (3, 4):
                feats.extend(f"c{n}:{padded[j:j + n]}" for j in range(len(padded) - n + 1))
    if stems:
        feats.append(f"first:{stems[0]}")
        feats.append(f"last:{stems[-1]}")
        if len(stems) > 1:
            feats.append(f"first2:{stems[0]}_{stems[1]}")
    if "?" in text or (stems and stems[0] in QUESTION_STEMS):
        feats.append("shape:question")
    feats.append(f"len:{min(len(stems), 8)}")
    if any(w.isdigit() for w in ws):
        feats.append("has:number")
    return feats


Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class DenseHead:
    """The same regression refitted with the sentence encoder's vector of the message beside the
    sparse features (scaled by ``alpha``): paraphrases the phrasings never spelled out still land."""

    encoder: str
    sparse: np.ndarray  # (features, labels)
    dense: np.ndarray  # (dim, labels)
    bias: np.ndarray
    alpha: float


class FittedIntentClassifier:
    """Softmax over sparse features (and, with an encoder, the message's vector); ``predict`` as the
    router expects.

    Args:
        labels: the intents, in the weight matrix's column order.
        vocabulary: feature name -> row of ``weights``.
        weights: (features, labels) float32, the sparse-only model.
        bias: (labels,) its intercepts.
        head: the model that also reads the encoder's vector, used once :meth:`with_encoder` is called.
    """

    def __init__(self, labels: Sequence[str], vocabulary: dict[str, int], weights: np.ndarray,
                 bias: np.ndarray, meta: dict[str, object] | None = None, head: DenseHead | None = None,
                 embed: Embed | None = None, cues: dict[str, list[str]] | None = None) -> None:
        self.labels = list(labels)
        self.vocabulary = vocabulary
        self.weights = weights
        self.bias = bias
        self.meta = meta or {}
        self.head = head
        self.embed = embed
        self.cues = {a: frozenset(v) for a, v in (cues or {}).items()}

    def with_encoder(self, name: str, embed: Embed) -> FittedIntentClassifier:
        """This classifier reading the encoder's vectors too, when its head was fitted for that encoder."""
        if self.head is None or self.head.encoder != name:
            return self
        return FittedIntentClassifier(self.labels, self.vocabulary, self.weights, self.bias, self.meta,
                                      self.head, embed, {a: sorted(v) for a, v in self.cues.items()})

    def stands(self, text: str, intent: str) -> bool:
        """Whether ``text`` holds a word that asks for ``intent`` (one of :data:`ACTIONS`).

        The cue words are read off the labelled phrasings by ``scripts/fit_intent.py``; a word one
        edit from a cue of five letters or more counts too ("chekout", "remvoe").
        """
        cues = self.cues.get(intent)
        if not cues:
            return True
        stems = cue_stems(text)
        words_ = words(text)
        for i, s in enumerate(stems):
            if i < len(words_) and words_[i].endswith(("er", "ers")) and not s.endswith("er"):
                continue  # "makeup remover", "stain remover": a thing named after the verb, not the verb
            if words_[i + 1:i + 3] in (["like", "to"], ["love", "to"]) and words_[i] in ("d", "ll"):
                continue  # "I'd like to give him haircuts at home": a wish to do something, not a request
            if s in cues:
                if s == stem("want") and i + 1 < len(words_) and words_[i + 1] == "to":
                    continue  # "I want to help the bees": a wish to do something, not to have a thing
                return True
            if len(s) >= 5 and any(len(c) >= 5 and DamerauLevenshtein.distance(s, c, score_cutoff=1) <= 1
                                   for c in cues):
                return True
        return False

    def scores(self, text: str) -> np.ndarray:
        rows = [self.vocabulary[f] for f in features(text) if f in self.vocabulary]
        if self.head is not None and self.embed is not None:
            vector = np.asarray(self.embed([text])[0], dtype=np.float64)
            z = self.head.bias.astype(np.float64) + self.head.alpha * (vector @ self.head.dense)
            if rows:
                z = z + self.head.sparse[rows].sum(axis=0)
        else:
            z = self.bias.astype(np.float64) + (self.weights[rows].sum(axis=0) if rows else 0.0)
        z = z - z.max()
        e = np.exp(z)
        return np.asarray(e / e.sum())

    def predict(self, text: str) -> list[tuple[str, float]]:
        """Labels with probabilities, best first."""
        p = self.scores(text)
        return sorted(((lab, float(v)) for lab, v in zip(self.labels, p, strict=True)), key=lambda t: -t[1])

    def save(self, path: Any) -> None:
        names = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        extra: dict[str, Any] = {}
        if self.head is not None:
            extra = {"head_encoder": np.array(self.head.encoder), "head_sparse": self.head.sparse.astype(np.float16),
                     "head_dense": self.head.dense.astype(np.float32), "head_bias": self.head.bias.astype(np.float32),
                     "head_alpha": np.array(self.head.alpha)}
        cues = np.array([f"{a}\t{c}" for a, v in sorted(self.cues.items()) for c in sorted(v)])
        np.savez_compressed(
            path, labels=np.array(self.labels), names=np.array(names), weights=self.weights.astype(np.float16),
            bias=self.bias.astype(np.float32), meta=np.array(json.dumps(self.meta)), cues=cues, **extra,
        )

    @classmethod
    def load_file(cls, handle: Any) -> FittedIntentClassifier:
        with np.load(handle, allow_pickle=False) as data:
            names = [str(n) for n in data["names"]]
            head = None
            if "head_dense" in data.files:
                head = DenseHead(str(data["head_encoder"]), data["head_sparse"].astype(np.float32),
                                 data["head_dense"].astype(np.float32), data["head_bias"], float(data["head_alpha"]))
            cues: dict[str, list[str]] = {}
            for row in (data["cues"] if "cues" in data.files else []):
                action, cue = str(row).split("\t", 1)
                cues.setdefault(action, []).append(cue)
            return cls([str(x) for x in data["labels"]], {n: i for i, n in enumerate(names)},
                       data["weights"].astype(np.float32), data["bias"], json.loads(str(data["meta"])), head,
                       cues=cues)


@lru_cache(maxsize=1)
def default_intent_classifier() -> FittedIntentClassifier:
    """The shipped classifier (``artefacts/intent.npz``)."""
    try:
        with resources.files("chatpay.nlu").joinpath("artefacts", ARTEFACT).open("rb") as fh:
            clf = FittedIntentClassifier.load_file(fh)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError("intent classifier", f"cannot read artefacts/{ARTEFACT}: {exc}; run scripts/fit_intent.py") from exc
    if sorted(clf.labels) != sorted(INTENTS):
        raise ConfigError("intent classifier", f"artefact labels {clf.labels} are not {list(INTENTS)}")
    return clf
