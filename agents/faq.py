"""FAQ matching: which question/answer entry a customer's message asks, and how sure we are.

Pure and synchronous (no database): the bot builds one `FaqIndex` per inbox from its entries and asks it.
Text is normalised by the nlp package (tone marks, teencode, repeated letters) and folded without diacritics,
so "ship về Đà Nẵng bao lâu", "ship ve da nang bao lau" and "sip ve dn bao lau z" meet on common ground.
Similarity is TF-IDF cosine over word uni/bi-grams and character 3-grams of the folded text, against every
phrasing an admin wrote for an entry; the message's intent (from nlp) adds weight to entries of that intent.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from inbox.search import fold

Normalizer = Callable[[str], str]

# Weight of the similarity and of an intent agreement in the confidence (they sum to 1).
SIMILARITY_WEIGHT = 0.8
INTENT_WEIGHT = 0.2
# An answer must also beat the runner-up entry by this much: two close entries mean we do not know which.
MIN_MARGIN = 0.06
# Words that carry no meaning for matching (politeness, pronouns of address, particles).
STOPWORDS = frozenset(
    "a ah ak a c anh chi em ban minh shop oi ad admin cho hoi xin vay z ha nhe nha nhi voi di luon dang thi la"
    " co khong ko k j gi the nao ntn".split()
)


def default_normalizer(text: str) -> str:
    """nlp's chat normalisation (teencode, tone marks, repeated letters), then folded without diacritics."""
    try:
        from nlp import normalize
    except ImportError:  # the nlp package is part of hopthu; this only guards partial installs
        return fold(text)
    return fold(normalize(text))


def features(folded: str) -> Counter[str]:
    words = [w for w in folded.split() if w not in STOPWORDS] or folded.split()
    grams: Counter[str] = Counter(words)
    grams.update(f"{a}_{b}" for a, b in itertools.pairwise(words))
    joined = f" {' '.join(words)} "
    grams.update(f"#{joined[i : i + 3]}" for i in range(len(joined) - 2))
    return grams


@dataclass(frozen=True, slots=True)
class Match:
    entry_id: int
    confidence: float
    similarity: float
    question: str  # the admin's phrasing that matched best


@dataclass(frozen=True, slots=True)
class FaqItem:
    entry_id: int
    intent: str | None
    questions: tuple[str, ...]


class FaqIndex:
    def __init__(self, items: Iterable[FaqItem], normalize: Normalizer = default_normalizer) -> None:
        self.normalize = normalize
        self._intent: dict[int, str | None] = {}
        rows: list[tuple[int, str, Counter[str]]] = []
        for item in items:
            self._intent[item.entry_id] = item.intent
            for question in item.questions:
                if question.strip():
                    rows.append((item.entry_id, question, features(normalize(question))))
        documents = Counter(gram for _, _, grams in rows for gram in grams)
        total = len(rows) + 1
        self._idf = {gram: math.log(total / count) + 1.0 for gram, count in documents.items()}
        self._rows = [(entry_id, question, self._vector(grams)) for entry_id, question, grams in rows]

    def __len__(self) -> int:
        return len(self._rows)

    def _vector(self, grams: Counter[str]) -> dict[str, float]:
        # Unknown grams get the highest idf: a word no FAQ question uses makes a message less like all of them.
        top = max(self._idf.values(), default=1.0)
        vec = {g: (1.0 + math.log(n)) * self._idf.get(g, top) for g, n in grams.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {g: v / norm for g, v in vec.items()}

    def match(self, text: str, intent: str | None = None, intent_confidence: float = 0.0) -> Match | None:
        """The best entry for `text`, or None when nothing resembles it."""
        if not self._rows or not text.strip():
            return None
        query = self._vector(features(self.normalize(text)))
        best: dict[int, tuple[float, str]] = {}
        for entry_id, question, vec in self._rows:
            small, large = (query, vec) if len(query) < len(vec) else (vec, query)
            sim = sum(v * large.get(g, 0.0) for g, v in small.items())
            if sim > best.get(entry_id, (-1.0, ""))[0]:
                best[entry_id] = (sim, question)
        scored = sorted(
            (
                (self._confidence(sim, entry_id, intent, intent_confidence), sim, entry_id, q)
                for entry_id, (sim, q) in best.items()
            ),
            reverse=True,
        )
        confidence, sim, entry_id, question = scored[0]
        if len(scored) > 1 and confidence - scored[1][0] < MIN_MARGIN:
            confidence = min(confidence, scored[1][0])  # ambiguous: as sure as the runner-up, no more
        return Match(entry_id, round(confidence, 4), round(sim, 4), question)

    def _confidence(self, sim: float, entry_id: int, intent: str | None, intent_confidence: float) -> float:
        entry_intent = self._intent.get(entry_id)
        if intent is None or entry_intent is None or intent == "other":
            agreement = 0.5  # nothing to say either way
        elif intent == entry_intent:
            agreement = 0.5 + 0.5 * intent_confidence
        else:
            agreement = 0.5 - 0.5 * intent_confidence
        return SIMILARITY_WEIGHT * sim + INTENT_WEIGHT * agreement
