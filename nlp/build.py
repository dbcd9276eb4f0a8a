"""Rebuild the shipped model from the project's own corpus: `make model` (= `python -m nlp.build`).

Deterministic: the corpus generator and the solver are seeded and the saved files carry no timestamps, so the
same code gives the same nlp/model/ files. Only nlp/corpus/ is read — never the research corpora.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from nlp import SHIPPED_MODEL_DIR
from nlp.classic import TASKS, train
from nlp.corpus import generate

CORPUS_DIR = Path(__file__).parent / "corpus"
# Regularisation chosen by 5-fold cross-validation on the corpus (see `python -m nlp.build --cv`).
C = {"sentiment": 8.0, "intent": 32.0}


def load_corpus(directory: Path = CORPUS_DIR) -> list[dict]:
    """Every labelled row of nlp/corpus/*.csv (generated chat.csv plus hand-written files)."""
    rows: list[dict] = []
    for path in sorted(directory.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("text") and row.get("intent") and row.get("sentiment"):
                    rows.append(row)
    return rows


def build(out: Path = SHIPPED_MODEL_DIR, regenerate: bool = True) -> None:
    if regenerate:
        generate.write(generate.generate())
    rows = load_corpus()
    texts = [r["text"] for r in rows]
    for task in TASKS:
        model = train(texts, [r[task] for r in rows], task, c=C[task], progress=lambda m, t=task: print(f"{t}: {m}"))
        model.meta["corpus"] = "nlp/corpus (project-written)"
        model.save(out)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"model → {out} ({size / 1e6:.2f} MB, {len(rows)} corpus rows)")


def cross_validate(folds: int = 5, seed: int = 13) -> dict[str, float]:
    """Stratified k-fold macro-F1 for both tasks on the corpus."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    rows = load_corpus()
    texts = [r["text"] for r in rows]
    result = {}
    for task in TASKS:
        labels = [r[task] for r in rows]
        gold: list[str] = []
        pred: list[str] = []
        for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, labels):
            m = train([texts[i] for i in tr], [labels[i] for i in tr], task, c=C[task])
            pred += m.predict([texts[i] for i in te])
            gold += [labels[i] for i in te]
        result[task] = float(f1_score(gold, pred, average="macro"))
        print(f"{task}: {folds}-fold macro_f1={result[task]:.4f}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nlp.build", description=__doc__)
    ap.add_argument("--out", type=Path, default=SHIPPED_MODEL_DIR)
    ap.add_argument("--cv", action="store_true", help="5-fold cross-validation on the corpus instead of building")
    ap.add_argument("--no-regenerate", action="store_true", help="use nlp/corpus/chat.csv as it is")
    args = ap.parse_args(argv)
    if args.cv:
        cross_validate()
    else:
        build(args.out, regenerate=not args.no_regenerate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
