"""FAQ bot evaluation: paraphrased customer questions (with and without diacritics) against the starter FAQ.

    .venv/bin/python bench/faq.py [--threshold T] [--show-errors]

`bench/faq_questions.csv` was written for this benchmark (none of its lines is an FAQ phrasing); `expected` is the
FAQ entry that should answer, or `none` where the bot must stay quiet (product questions, orders, complaints…).
Prints, at the default threshold and a sweep around it: answer precision (target ≥ 0.95), the share of answerable
questions answered, and how often an unanswerable one was answered anyway.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.bots import DEFAULT_THRESHOLD
from agents.faq import FaqIndex, FaqItem
from agents.faq_seed import FAQ

QUESTIONS = Path(__file__).with_name("faq_questions.csv")


def analyses(texts: list[str], use_intent: bool) -> list[tuple[str | None, float]]:
    if not use_intent:
        return [(None, 0.0)] * len(texts)
    from nlp import analyze_batch

    return [(r.intent, r.intent_confidence) for r in analyze_batch(texts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--show-errors", action="store_true")
    parser.add_argument("--no-intent", action="store_true", help="similarity only, without the nlp intent")
    parser.add_argument("--quick", action="store_true", help="accepted for `make bench`; the run is already short")
    args = parser.parse_args()

    rows = list(csv.DictReader(QUESTIONS.open(encoding="utf-8")))
    keys = [entry["key"] for entry in FAQ]
    index = FaqIndex(FaqItem(i, e["intent"], tuple(e["questions"])) for i, e in enumerate(FAQ))
    texts = [row["text"] for row in rows]
    analyses(texts[:1], not args.no_intent)  # load the model before timing
    started = time.perf_counter()
    intents = analyses(texts, not args.no_intent)
    matches = [index.match(text, intent, conf) for text, (intent, conf) in zip(texts, intents, strict=True)]
    per_message_ms = (time.perf_counter() - started) * 1000 / len(texts)

    answerable = sum(row["expected"] != "none" for row in rows)
    print(f"{len(rows)} questions ({answerable} answerable, {len(rows) - answerable} not), {len(FAQ)} FAQ entries")
    print(f"matching incl. nlp analysis: {per_message_ms:.2f} ms per message")
    print(f"{'threshold':>9} {'precision':>9} {'answered':>9} {'coverage':>9} {'wrong':>6}")
    for threshold in sorted({args.threshold, *(round(0.30 + 0.05 * i, 2) for i in range(9))}):
        answered = correct = 0
        errors = []
        for row, match in zip(rows, matches, strict=True):
            if match is None or match.confidence < threshold:
                continue
            answered += 1
            if keys[match.entry_id] == row["expected"]:
                correct += 1
            else:
                errors.append((row["text"], row["expected"], keys[match.entry_id], match.confidence))
        precision = correct / answered if answered else 1.0
        mark = "  <- default" if threshold == args.threshold else ""
        print(
            f"{threshold:>9.2f} {precision:>9.3f} {answered / len(rows):>9.3f} "
            f"{correct / answerable:>9.3f} {len(errors):>6}{mark}"
        )
        if args.show_errors and threshold == args.threshold:
            for text, want, got, conf in errors:
                print(f"    {conf:.2f} {text!r}: expected {want}, answered {got}")
    print("precision = correct answers / answers given (target >= 0.95); coverage = answerable ones answered")


if __name__ == "__main__":
    main()
