"""Fitted decisions, loaded from a versioned artefact shipped in the package.

``scripts/fit_nlu.py`` fits, on the development shops, two logistic regressions per encoder
and writes them to ``artefacts/<encoder>.json``:

* the **ranker**: the probability that a candidate product is one the shopper asked for,
  from lexical and dense features (:data:`chatpay.nlu.search.RANK_FEATURES`);
* the **policy decision**: a logistic regression giving the probability that the policy whose
  keywords a question says answers it rather than the products (:data:`chatpay.nlu.search.POLICY_FEATURES`);
* the **abstainer**: gradient-boosted trees giving the probability that the shop sells nothing
  that fits, from the question's best candidates (:data:`chatpay.nlu.search.ABSTAIN_FEATURES`);
  trees, because the evidence interacts (few shared words are fine when one product stands
  far out in meaning), with the threshold chosen on leave-one-shop-out predictions.

Each has a lexical-only twin for when no encoder runs. Nothing is fitted at start-up; loading
and running them needs numpy alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from chatpay.core.errors import ConfigError

ARTEFACT_VERSION = 2  # 2: adds the policy decision


@dataclass(frozen=True)
class Logistic:
    """A standardised logistic regression: ``sigmoid(((x - mean) / scale) . coef + intercept)``."""

    features: tuple[str, ...]
    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def to_json(self) -> dict[str, Any]:
        return {"features": list(self.features), "coef": self.coef.round(6).tolist(),
                "intercept": round(self.intercept, 6), "mean": self.mean.round(6).tolist(),
                "scale": self.scale.round(6).tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Logistic:
        return cls(tuple(data["features"]), np.asarray(data["coef"], dtype=np.float64), float(data["intercept"]),
                   np.asarray(data["mean"], dtype=np.float64), np.asarray(data["scale"], dtype=np.float64))


@dataclass(frozen=True)
class Trees:
    """Gradient-boosted regression trees on the log-odds scale, evaluated with numpy.

    Each tree is stored as flat arrays (sklearn's layout): ``feature`` (-2 at a leaf),
    ``threshold``, ``left``, ``right`` and ``value``; go left when ``x[feature] <= threshold``.
    """

    features: tuple[str, ...]
    intercept: float
    rate: float
    trees: tuple[dict[str, np.ndarray], ...]

    def __post_init__(self) -> None:
        # Walking a depth-2 tree is a few list look-ups; numpy's per-call overhead would cost 20x more.
        object.__setattr__(self, "_walk", tuple(
            (t["feature"].tolist(), t["threshold"].tolist(), t["left"].tolist(), t["right"].tolist(),
             t["value"].tolist()) for t in self.trees))

    def raw(self, row: list[float]) -> float:
        total = self.intercept
        for feature, threshold, left, right, value in self._walk:  # type: ignore[attr-defined]
            node = 0
            while feature[node] >= 0:
                node = left[node] if row[feature[node]] <= threshold[node] else right[node]
            total += self.rate * value[node]
        return total

    def __call__(self, x: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(x).astype(np.float64).tolist()
        raw = np.array([self.raw(r) for r in rows])
        return 1.0 / (1.0 + np.exp(-np.clip(raw, -30, 30)))

    def to_json(self) -> dict[str, Any]:
        return {"kind": "trees", "features": list(self.features), "intercept": round(self.intercept, 8),
                "rate": self.rate,
                "trees": [{k: (v.round(8) if v.dtype.kind == "f" else v).tolist() for k, v in t.items()}
                          for t in self.trees]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trees:
        trees = tuple(
            {"feature": np.asarray(t["feature"], dtype=np.int64), "threshold": np.asarray(t["threshold"]),
             "left": np.asarray(t["left"], dtype=np.int64), "right": np.asarray(t["right"], dtype=np.int64),
             "value": np.asarray(t["value"], dtype=np.float64)}
            for t in data["trees"]
        )
        return cls(tuple(data["features"]), float(data["intercept"]), float(data["rate"]), trees)


Model = Logistic | Trees


def model_from_json(data: dict[str, Any]) -> Model:
    return Trees.from_json(data) if data.get("kind") == "trees" else Logistic.from_json(data)


@dataclass(frozen=True)
class FittedModels:
    """The ranker and abstainer for one encoder (and their lexical-only twins)."""

    encoder: str
    ranker: Model
    ranker_lexical: Model
    abstainer: Model
    abstainer_lexical: Model
    abstain_threshold: float
    meta: dict[str, Any]
    policy_model: Model | None = None  # whether a candidate policy answers (POLICY_FEATURES)

    def rank(self, features: np.ndarray, *, dense: bool) -> np.ndarray:
        if len(features) == 0:
            return np.zeros(0)
        model = self.ranker if dense else self.ranker_lexical
        return model(features.astype(np.float64))

    def abstain(self, features: np.ndarray, *, dense: bool) -> float:
        model = self.abstainer if dense else self.abstainer_lexical
        return float(model(features.astype(np.float64)[None, :])[0])

    def policy(self, features: np.ndarray) -> float:
        """The probability that the candidate policy, not a product, answers the question."""
        if self.policy_model is None:
            raise ConfigError("fitted models", "the artefact has no policy model; run scripts/fit_nlu.py")
        return float(self.policy_model(features.astype(np.float64)[None, :])[0])

    def check_features(self, **wanted: tuple[str, ...]) -> None:
        """Raise a :class:`ConfigError` naming the fix unless each model reads the features given."""
        for part, names in wanted.items():
            model = getattr(self, part)
            if model is None or tuple(model.features) != names:
                raise ConfigError("fitted models", f"the {self.encoder} artefact's {part} was fitted on other "
                                  "features than this code computes; run scripts/fit_nlu.py")

    def to_json(self) -> dict[str, Any]:
        return {"version": ARTEFACT_VERSION, "encoder": self.encoder, "ranker": self.ranker.to_json(),
                "policy": self.policy_model.to_json() if self.policy_model is not None else None,
                "ranker_lexical": self.ranker_lexical.to_json(), "abstainer": self.abstainer.to_json(),
                "abstainer_lexical": self.abstainer_lexical.to_json(),
                "abstain_threshold": round(self.abstain_threshold, 4), "meta": self.meta}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FittedModels:
        if data.get("version") != ARTEFACT_VERSION:
            raise ConfigError("fitted models", f"artefact version {data.get('version')!r}, expected {ARTEFACT_VERSION}")
        return cls(str(data["encoder"]), model_from_json(data["ranker"]),
                   model_from_json(data["ranker_lexical"]), model_from_json(data["abstainer"]),
                   model_from_json(data["abstainer_lexical"]), float(data["abstain_threshold"]),
                   dict(data.get("meta", {})), model_from_json(data["policy"]) if data.get("policy") else None)


def artefact_name(encoder: str) -> str:
    return f"search-{encoder}.json"


@lru_cache(maxsize=8)
def load_models(encoder: str) -> FittedModels:
    """The shipped models fitted for ``encoder`` (``lexical`` when no encoder runs)."""
    name = artefact_name(encoder if encoder != "lexical" else "all-minilm-l6-v2-int8")
    try:
        raw = resources.files("chatpay.nlu").joinpath("artefacts", name).read_text(encoding="utf-8")
        return FittedModels.from_json(json.loads(raw))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError("fitted models", f"cannot read artefacts/{name}: {exc}; run scripts/fit_nlu.py") from exc
