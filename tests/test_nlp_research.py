"""Acceptance numbers on public research corpora (../shared/data; evaluation only, never copied or shipped)
and cross-validation on the project's own corpus. Research tests skip when the data is absent."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

import nlp
from inbox.cli import main as hopthu

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
AIVIVN = DATA / "sentiment_aivivn_reviews.csv"
needs_data = pytest.mark.skipif(not AIVIVN.is_file(), reason="../shared/data is not available")


@pytest.fixture(autouse=True)
def _shipped_model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HOPTHU_NLP_MODEL_DIR", raising=False)
    monkeypatch.delenv("HOPTHU_NLP_BACKEND", raising=False)
    nlp.reset_backend()
    yield
    nlp.reset_backend()


def _last_float(out: str, key: str) -> float:
    return float(next(line for line in reversed(out.splitlines()) if line.startswith(key + "=")).split("=")[1])


def _split(src: Path, tmp: Path, seed: int = 13) -> tuple[Path, Path]:
    with src.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    random.Random(seed).shuffle(rows)
    cut = int(len(rows) * 0.8)
    paths = []
    for name, part in (("train.csv", rows[:cut]), ("test.csv", rows[cut:])):
        path = tmp / name
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["text", "label"])
            w.writeheader()
            w.writerows({"text": r["text"], "label": r["label"]} for r in part)
        paths.append(path)
    return paths[0], paths[1]


@needs_data
def test_shipped_model_on_aivivn_reviews(capsys: pytest.CaptureFixture[str]) -> None:
    assert hopthu(["nlp", "eval", str(AIVIVN), "--task", "sentiment"]) == 0
    assert _last_float(capsys.readouterr().out, "accuracy") >= 0.82


@needs_data
def test_train_on_80_percent_of_aivivn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = _split(AIVIVN, tmp_path)
    model = tmp_path / "model"
    assert hopthu(["nlp", "train", str(train), "--task", "sentiment", "--out", str(model)]) == 0
    assert hopthu(["nlp", "eval", str(test), "--task", "sentiment", "--model", str(model)]) == 0
    assert _last_float(capsys.readouterr().out, "accuracy") >= 0.89


@needs_data
def test_vsfc_train_to_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    assert (
        hopthu(["nlp", "train", str(DATA / "sentiment_vsfc_train.csv"), "--task", "sentiment", "--out", str(model)])
        == 0
    )
    test = DATA / "sentiment_vsfc_test.csv"
    assert hopthu(["nlp", "eval", str(test), "--task", "sentiment", "--model", str(model)]) == 0
    # The target is 0.75 (published TF-IDF baselines: 0.72–0.76); NB-LR over word-bounded char n-grams and
    # negation scopes measures 0.7552 (multinomial logistic regression over the earlier features: 0.7409).
    assert _last_float(capsys.readouterr().out, "macro_f1") >= 0.75


def test_own_corpus_cross_validation() -> None:
    from nlp.build import cross_validate

    scores = cross_validate(folds=5)
    assert scores["intent"] >= 0.90
    assert scores["sentiment"] >= 0.85


def test_corpus_is_the_projects_own_reproducible_and_large_enough() -> None:
    from nlp.build import load_corpus
    from nlp.corpus import generate

    rows = load_corpus()
    assert len(rows) >= 3000
    assert {r["intent"] for r in rows} == set(nlp.INTENTS)
    assert {r["sentiment"] for r in rows} == set(nlp.SENTIMENTS)
    assert {r["domain"] for r in rows} >= {"fashion", "cosmetics", "phones", "food", "services"}
    for intent in nlp.INTENTS:
        assert sum(r["intent"] == intent for r in rows) >= 60, intent
    # the committed chat.csv is exactly what the seeded generator writes
    regenerated = generate.generate()
    committed = [r for r in rows if r.get("kind")]
    assert [r["text"] for r in regenerated] == [r["text"] for r in committed][: len(regenerated)]
    no_diacritics = sum(r["text"].isascii() for r in rows) / len(rows)
    assert 0.15 <= no_diacritics <= 0.5


def test_make_model_is_deterministic_and_rebuilds_the_shipped_model(tmp_path: Path) -> None:
    """`make model` is seeded: two builds on one machine are byte-identical. Across machines the floats' last bits
    follow the CPU's vector kernels (an AVX-512 Xeon rebuilt the shipped coefficients within 0.002, probabilities
    within 1.3e-4), so against the shipped files the promise is the same vocabulary and labels, the same answer
    on every corpus line, and probabilities within 1e-3."""
    import numpy as np

    from nlp.build import build, load_corpus
    from nlp.classic import LinearModel

    first, second = tmp_path / "first", tmp_path / "second"
    build(first, regenerate=False)
    build(second, regenerate=False)
    for name in ("sentiment.npz", "sentiment.json", "intent.npz", "intent.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    for name in ("sentiment.json", "intent.json"):
        assert (first / name).read_bytes() == (nlp.SHIPPED_MODEL_DIR / name).read_bytes(), name
    texts = [row["text"] for row in load_corpus()]
    for task in ("sentiment", "intent"):
        rebuilt, shipped = LinearModel.load(first, task), LinearModel.load(nlp.SHIPPED_MODEL_DIR, task)
        assert rebuilt.labels == shipped.labels and rebuilt.vocab == shipped.vocab, task
        ours, theirs = rebuilt.proba(texts), shipped.proba(texts)
        assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).all(), task
        assert np.abs(ours - theirs).max() < 1e-3, task
