"""`hopthu nlp analyze|eval|train` — registered by inbox/cli.py.

- `hopthu nlp analyze TEXT…` prints one JSON analysis per text (or reads lines from stdin with `-`).
- `hopthu nlp eval FILE.csv --task sentiment|intent [--label-column C] [--model DIR]` prints accuracy, macro-F1
  and a per-label report; the last line is `macro_f1=<float>`. When the file uses fewer labels than the model
  (e.g. a positive/negative review set against the 3-way sentiment model), predictions are restricted to the
  file's labels; `--all-labels` turns that off.
- `hopthu nlp train FILE.csv --task … --out DIR [--label-column C] [--backend classic|transformers --base DIR]`
  trains a model directory usable with `HOPTHU_NLP_MODEL_DIR=DIR` or `--model DIR`, with a progress bar on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

csv.field_size_limit(10_000_000)


class Progress:
    """A one-line progress bar on stderr (no dependency)."""

    def __init__(self, label: str, stream=None) -> None:
        self.label, self._stream, self.started = label, stream, time.monotonic()

    @property
    def stream(self):
        return self._stream or sys.stderr

    def __call__(self, message: str) -> None:
        bar, finished = "", True
        done, _, total = message.rpartition(" ")[2].partition("/")
        if done.isdigit() and total.isdigit() and int(total):
            frac = int(done) / int(total)
            filled = int(frac * 30)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {frac * 100:5.1f}% "
            finished = done == total
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r{self.label}: {bar}{message} ({elapsed:.0f}s)\033[K" + ("\n" if finished else ""))
        self.stream.flush()


def read_labelled(path: str | Path, task: str, label_column: str | None = None) -> tuple[list[str], list[str]]:
    """Texts and labels of a CSV with a `text` column and a label column (`label`, or the task name)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        if "text" not in fields:
            raise SystemExit(f"error: {path} has no 'text' column (columns: {', '.join(fields)})")
        column = label_column or ("label" if "label" in fields else task)
        if column not in fields:
            raise SystemExit(f"error: {path} has no label column {column!r}; name one with --label-column")
        texts, labels = [], []
        for row in reader:
            text, label = (row.get("text") or "").strip(), (row.get(column) or "").strip()
            if text and label:
                texts.append(text)
                labels.append(label)
    if not texts:
        raise SystemExit(f"error: no labelled rows in {path}")
    return texts, labels


def _backend_for(model: str | None):
    import nlp

    if not model:
        return nlp.get_backend()
    d = Path(model)
    if not d.is_dir():
        raise SystemExit(f"error: --model {model}: not a directory")
    from nlp.backend_transformers import is_transformers_dir

    if is_transformers_dir(d):
        from nlp.backend_transformers import TransformersBackend

        return TransformersBackend(d)
    from nlp.backend_classic import ClassicBackend

    return ClassicBackend(d)


def cmd_analyze(args: argparse.Namespace) -> int:
    from nlp import analyze_batch

    texts = [line.rstrip("\n") for line in sys.stdin] if args.text == ["-"] else args.text
    for result in analyze_batch(texts):
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    return 0


def evaluate(texts: Sequence[str], gold: Sequence[str], task: str, backend, all_labels: bool = False) -> dict:
    import numpy as np
    from sklearn.metrics import accuracy_score, classification_report, f1_score

    labels, p = backend.proba(task, texts)
    present = sorted(set(gold))
    unknown = [g for g in present if g not in labels]
    if unknown:
        raise SystemExit(f"error: labels {unknown} are not known to the {task} model (it knows {labels})")
    if not all_labels and len(present) < len(labels):
        keep = [labels.index(x) for x in present]
        pred = [present[i] for i in np.asarray(p)[:, keep].argmax(axis=1)]
    else:
        pred = [labels[i] for i in np.asarray(p).argmax(axis=1)]
    return {
        "rows": len(gold),
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, average="macro", labels=present)),
        "report": classification_report(gold, pred, labels=present, digits=4, zero_division=0),
    }


def cmd_eval(args: argparse.Namespace) -> int:
    texts, gold = read_labelled(args.file, args.task, args.label_column)
    started = time.monotonic()
    result = evaluate(texts, gold, args.task, _backend_for(args.model), all_labels=args.all_labels)
    elapsed = time.monotonic() - started
    print(result["report"])
    print(f"rows={result['rows']} seconds={elapsed:.2f}")
    print(f"accuracy={result['accuracy']:.4f}")
    print(f"macro_f1={result['macro_f1']:.4f}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    texts, labels = read_labelled(args.file, args.task, args.label_column)
    out = Path(args.out)
    progress = Progress(f"train {args.task}")
    if args.backend == "transformers":
        from nlp.backend_transformers import fine_tune

        if not args.base:
            raise SystemExit("error: --backend transformers needs --base DIR (a local pretrained model)")
        fine_tune(
            texts, labels, args.task, base=args.base, out=out, epochs=args.epochs, batch_size=args.batch_size,
            learning_rate=args.learning_rate, progress=progress, seed=args.seed,
        )  # fmt: skip
    else:
        from nlp.classic import train

        model = train(texts, labels, args.task, c=args.c, min_df=args.min_df, seed=args.seed, progress=progress)
        model.meta["source"] = Path(args.file).name
        model.save(out)
    print(json.dumps({"task": args.task, "rows": len(texts), "labels": sorted(set(labels)), "out": str(out)}))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `nlp` command to the `hopthu` parser."""
    nlp = sub.add_parser("nlp", help="Vietnamese NLP: analyze, eval, train").add_subparsers(
        dest="action", required=True
    )

    analyze = nlp.add_parser("analyze", help="print the analysis of TEXT as JSON ('-' reads lines from stdin)")
    analyze.add_argument("text", nargs="+", metavar="TEXT")
    analyze.set_defaults(func=cmd_analyze)

    ev = nlp.add_parser("eval", help="accuracy and macro-F1 of the model on a labelled CSV (text,label)")
    ev.add_argument("file", metavar="FILE")
    ev.add_argument("--task", choices=["sentiment", "intent"], required=True)
    ev.add_argument("--label-column", help="label column (default: label, else the task name)")
    ev.add_argument("--model", help="model directory (default: HOPTHU_NLP_MODEL_DIR or the shipped model)")
    ev.add_argument("--all-labels", action="store_true", help="do not restrict predictions to the file's labels")
    ev.set_defaults(func=cmd_eval)

    tr = nlp.add_parser("train", help="train a model directory from a labelled CSV (text,label)")
    tr.add_argument("file", metavar="FILE")
    tr.add_argument("--task", choices=["sentiment", "intent"], required=True)
    tr.add_argument("--out", required=True, help="model directory to write")
    tr.add_argument("--label-column")
    tr.add_argument("--backend", choices=["classic", "transformers"], default="classic")
    tr.add_argument("--base", help="transformers: local pretrained model directory to fine-tune")
    tr.add_argument("--epochs", type=float, default=3.0, help="transformers: training epochs")
    tr.add_argument("--batch-size", type=int, default=16, help="transformers: batch size")
    tr.add_argument("--learning-rate", type=float, default=5e-5, help="transformers: AdamW learning rate")
    tr.add_argument("--c", type=float, default=8.0, help="classic: inverse regularisation strength")
    tr.add_argument("--min-df", type=int, default=2, help="classic: drop features seen in fewer rows")
    tr.add_argument("--seed", type=int, default=13)
    tr.set_defaults(func=cmd_train)
