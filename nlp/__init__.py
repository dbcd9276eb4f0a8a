"""Vietnamese NLP for hopthu: sentiment, intent and entities of chat messages, offline, on the CPU.

    from nlp import analyze, analyze_batch
    a = analyze("sp này còn size M không ạ")
    a.sentiment, a.sentiment_score, a.intent, a.intent_confidence, a.entities
    a.to_dict()   # JSON-serialisable dict with the same keys

- `sentiment`: "negative" | "neutral" | "positive"; `sentiment_score` in −1…1 (P(positive) − P(negative));
- `intent`: one of `INTENTS` (documented with examples in nlp/INTENTS.md); "other" when the model is unsure
  (`intent_confidence` below `INTENT_THRESHOLD`);
- `entities`: `nlp.entities.extract(text)` — `{type, value, normalized, start, end}`.

Backends: `HOPTHU_NLP_BACKEND=classic` (default; the model shipped in nlp/model/ or `HOPTHU_NLP_MODEL_DIR`) or
`transformers` (a local Hugging Face sequence-classification model directory in `HOPTHU_NLP_MODEL_DIR`).
`normalize(text, fold=False)` is re-exported for FAQ matching and search.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nlp.entities import extract
from nlp.normalize import normalize

__all__ = [
    "INTENTS",
    "SENTIMENTS",
    "Analysis",
    "analyze",
    "analyze_batch",
    "extract",
    "get_backend",
    "normalize",
    "reset_backend",
]

INTENTS = (
    "greeting", "thanks_bye", "ask_price", "ask_availability", "ask_product_info", "order", "order_status",
    "shipping", "payment", "promotion", "return_refund", "complaint", "store_info", "human_handoff", "other",
)  # fmt: skip
SENTIMENTS = ("negative", "neutral", "positive")
INTENT_THRESHOLD = 0.35
SHIPPED_MODEL_DIR = Path(__file__).parent / "model"


@dataclass(slots=True)
class Analysis:
    sentiment: str
    sentiment_score: float
    intent: str
    intent_confidence: float
    entities: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def __getitem__(self, key: str):  # a result also reads like a dict: a["intent"]
        return getattr(self, key)


class Backend:
    """A backend gives label probabilities per task; sentiment/intent pick from them."""

    name = "base"

    def proba(self, task: str, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """(labels, probabilities of shape (len(texts), len(labels))) for task "sentiment" or "intent"."""
        raise NotImplementedError

    def sentiment(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label, score −1…1) per text; the score is P(positive) − P(negative)."""
        labels, p = self.proba("sentiment", texts)
        zero = np.zeros(len(texts), dtype=np.float32)
        pos = p[:, labels.index("positive")] if "positive" in labels else zero
        neg = p[:, labels.index("negative")] if "negative" in labels else zero
        best = p.argmax(axis=1)
        return [(labels[b], float(pp - nn)) for b, pp, nn in zip(best, pos, neg, strict=True)]

    def intent(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label, confidence) per text."""
        labels, p = self.proba("intent", texts)
        best = p.argmax(axis=1)
        return [(labels[b], float(p[i, b])) for i, b in enumerate(best)]

    def memory_bytes(self) -> int:
        return 0


_lock = threading.Lock()
_backend: Backend | None = None


def get_backend() -> Backend:
    """The configured backend, loaded once (thread-safe)."""
    global _backend
    if _backend is None:
        with _lock:
            if _backend is None:
                _backend = _load_backend()
    return _backend


def reset_backend(backend: Backend | None = None) -> None:
    """Forget the loaded backend (tests, or after HOPTHU_NLP_* changed); optionally install one."""
    global _backend
    with _lock:
        _backend = backend


def _load_backend() -> Backend:
    name = os.environ.get("HOPTHU_NLP_BACKEND", "classic").strip().lower() or "classic"
    model_dir = os.environ.get("HOPTHU_NLP_MODEL_DIR") or None
    if name == "classic":
        from nlp.backend_classic import ClassicBackend

        return ClassicBackend(model_dir)
    if name == "transformers":
        from nlp.backend_transformers import TransformersBackend

        if not model_dir:
            raise RuntimeError("HOPTHU_NLP_BACKEND=transformers needs HOPTHU_NLP_MODEL_DIR (a local model directory)")
        return TransformersBackend(model_dir)
    raise RuntimeError(f"unknown HOPTHU_NLP_BACKEND {name!r} (classic or transformers)")


def analyze_batch(texts: Sequence[str]) -> list[Analysis]:
    """Analyse many messages at once (much faster per message than calling `analyze` in a loop)."""
    texts = [t or "" for t in texts]
    if not texts:
        return []
    backend = get_backend()
    sentiments = backend.sentiment(texts)
    intents = backend.intent(texts)
    out = []
    for text, (sent, score), (intent, conf) in zip(texts, sentiments, intents, strict=True):
        if intent != "other" and conf < INTENT_THRESHOLD:
            intent = "other"
        out.append(Analysis(sent, round(float(score), 4), intent, round(float(conf), 4), extract(text)))
    return out


def analyze(text: str) -> Analysis:
    """Analyse one message."""
    return analyze_batch([text])[0]
