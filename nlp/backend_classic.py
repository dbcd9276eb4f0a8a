"""Classic backend: the linear models of nlp/classic.py, from `HOPTHU_NLP_MODEL_DIR` or the shipped nlp/model/.

A model directory made by `hopthu nlp train --task sentiment` holds only a sentiment model; the other task then
comes from the shipped model, so a user can retrain one task without losing the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlp import SHIPPED_MODEL_DIR, Backend
from nlp.classic import LinearModel


def load_task(model_dir: str | Path | None, task: str) -> LinearModel:
    for d in (model_dir, SHIPPED_MODEL_DIR):
        if d is not None and LinearModel.exists(d, task):
            return LinearModel.load(d, task)
    raise FileNotFoundError(f"no {task} model in {model_dir or SHIPPED_MODEL_DIR} (run `make model`)")


class ClassicBackend(Backend):
    name = "classic"

    def __init__(self, model_dir: str | Path | None = None) -> None:
        self.sentiment_model = load_task(model_dir, "sentiment")
        self.intent_model = load_task(model_dir, "intent")
        # Trained on the same rows, both tasks share a vocabulary: one tf-idf matrix serves both.
        self.shared = self.sentiment_model.vocab.keys() == self.intent_model.vocab.keys() and np.array_equal(
            self.sentiment_model.idf, self.intent_model.idf
        )
        if self.shared:
            self.intent_model.vocab = self.sentiment_model.vocab
        self._last: tuple[Sequence[str], object] | None = None

    def proba(self, task: str, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        model = self.sentiment_model if task == "sentiment" else self.intent_model
        if not self.shared:
            return model.labels, model.proba(texts)
        last = self._last
        if last is not None and last[0] is texts:  # the other task just built this batch's matrix
            x = last[1]
            self._last = None
        else:
            x = model.matrix(texts)
            self._last = (texts, x)
        return model.labels, model.proba(texts, x)

    def memory_bytes(self) -> int:
        total = self.sentiment_model.nbytes() + self.intent_model.nbytes()
        if self.shared:  # one vocabulary dict, counted once
            total -= self.intent_model.nbytes() - self.intent_model.coef.nbytes - self.intent_model.intercept.nbytes
        return total
