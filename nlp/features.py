"""Features for the classic backend: word and character n-grams over normalised text.

Training (scikit-learn) and inference (nlp/classic.py, no scikit-learn needed) call the same `features()`, so a
model directory is just a vocabulary with weights.

- tokens come from underthesea's regex tokenizer (syllables, numbers, punctuation) on `normalize(text, cues=True)`;
- `w:` syllable unigrams as written (with diacritics, which separate "bán"/"bận"/"bạn"),
- `f:` folded (no diacritics) unigrams and bigrams, so text typed without diacritics meets the same weights,
- character 2–4-grams of each folded word padded with spaces (typos, teencode variants, glued words), like
  scikit-learn's "char_wb": grams across two words added little over the `f:` bigrams and blurred sentiment,
- `n:` folded words in the scope of a negation ("không", "chưa", "chẳng"…) up to the end of the clause (a comma,
  a full stop, "nhưng", "mà"), so "không buồn ngủ" reads differently from "buồn ngủ",
- numbers become `<num>`; emoji and emoticons arrive as the cue words `emopos` / `emoneg`.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from itertools import pairwise

from nlp.normalize import normalize
from nlp.text import fold


def _load_underthesea_tokenizer():
    """underthesea's rule tokenizer module, without running `underthesea/__init__.py`, which imports its whole
    toolkit (and transformers/torch when installed: ~10 s). A temporary package shim makes the submodule import
    cheap; it is removed afterwards so a later `import underthesea` still loads the real package."""
    import importlib
    import importlib.util
    import sys
    import types

    if "underthesea" in sys.modules:
        return importlib.import_module("underthesea.pipeline.word_tokenize.regex_tokenize")
    spec = importlib.util.find_spec("underthesea")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("underthesea is not installed")
    shim = types.ModuleType("underthesea")
    shim.__path__ = list(spec.submodule_search_locations)
    sys.modules["underthesea"] = shim
    try:
        return importlib.import_module("underthesea.pipeline.word_tokenize.regex_tokenize")
    finally:
        if sys.modules.get("underthesea") is shim:
            del sys.modules["underthesea"]


try:  # underthesea's rule tokenizer (URLs, e-mails, dates, numbers, emoticons, syllables); no model to load
    _uts = _load_underthesea_tokenizer()

    def _tokenize(text: str) -> list[str]:
        # Same pattern as underthesea's `tokenize`, without its per-token character normalisation (normalize()
        # already did that) and its slow named-group lookup: the whole match is the token.
        return [m.group() for m in _uts.patterns.finditer(text)]

except ImportError:  # pragma: no cover - underthesea is a dependency; keep the library importable without it
    _TOKEN = re.compile(r"\w+|[^\w\s]")

    def _tokenize(text: str) -> list[str]:
        return _TOKEN.findall(text)


FEATURE_VERSION = 4
_DIGITS = re.compile(r"\d")
_PUNCT_KEEP = {"?", "!"}
# Negation opens a scope that closes at the end of the clause (punctuation is seen before it is dropped).
_NEGATORS = {"không", "chưa", "chẳng", "chả", "đừng", "khong", "chua", "chang"}
_CLAUSE_END = {"nhưng", "mà", "nhung"}


def _tokens(text: str) -> tuple[list[str], list[bool]]:
    """Normalised tokens of a chat message and, per token, whether a negation earlier in its clause covers it."""
    out: list[str] = []
    negated: list[bool] = []
    scope = False
    for tok in _tokenize(normalize(text, cues=True)):
        if tok.isalnum() or "_" in tok:
            tok = "<num>" if _DIGITS.search(tok) and not tok.isalpha() else tok
        elif tok in _PUNCT_KEEP:
            scope = False
        elif any(ch.isalnum() for ch in tok):
            tok = "<num>" if _DIGITS.search(tok) else tok
        else:  # other punctuation: dropped, but it ends a clause
            scope = False
            continue
        if tok in _CLAUSE_END:
            scope = False
        out.append(tok)
        negated.append(scope)
        if tok in _NEGATORS:
            scope = True
    return out, negated


def tokenize(text: str) -> list[str]:
    """Normalised tokens of a chat message (punctuation other than ? and ! dropped)."""
    return _tokens(text)[0]


@lru_cache(maxsize=8192)
def _features_cached(text: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(feature names, their counts) of one message."""
    toks, negated = _tokens(text)
    if not toks:
        return ("<empty>",), (1,)
    folded = fold(" ".join(toks)).split(" ")
    if len(folded) != len(toks):  # a token folded to nothing (lone combining mark): fold one by one
        folded = [fold(t) or t for t in toks]
    feats = ["w:" + t for t in toks]
    feats += ["f:" + t for t in folded]
    feats += ["f:" + a + " " + b for a, b in pairwise(folded)]
    feats += ["n:" + t for t, neg in zip(folded, negated, strict=True) if neg and t not in _NEGATORS]
    # character 2–4-grams of each word with a space either side (they stop at word boundaries, like "char_wb")
    for t in folded:
        if t == "<num>" or t in _PUNCT_KEEP:
            continue
        w = " " + t + " "
        n = len(w)
        feats += [w[i : i + 2] for i in range(n - 1)]
        feats += [w[i : i + 3] for i in range(n - 2)]
        feats += [w[i : i + 4] for i in range(n - 3)]
    counted = Counter(feats)
    return tuple(counted), tuple(counted.values())


def features(text: str) -> dict[str, int]:
    """Feature counts of one message."""
    keys, counts = _features_cached(text)
    return dict(zip(keys, counts, strict=True))


def feature_list(text: str) -> list[str]:
    """Features with repetition (scikit-learn's analyzer interface)."""
    keys, counts = _features_cached(text)
    return [k for k, c in zip(keys, counts, strict=True) for _ in range(c)]
