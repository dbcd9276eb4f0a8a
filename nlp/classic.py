"""The classic backend: a linear model (logistic regression) over word and character n-grams.

Sentiment uses NB-LR (Wang & Manning 2012, "Baselines and bigrams"): per label, one-vs-rest logistic regression
over the tf-idf rows scaled feature by feature with the naive Bayes log-count ratio of that label, which lets the
rare, polarised phrases weigh more. The scaling folds into the coefficients, so inference is the same dot product.
Intent keeps one multinomial logistic regression (its probabilities are the confidences `other` is decided on).

Training uses scikit-learn; inference needs only numpy and scipy: a model is a vocabulary, idf weights, a
coefficient matrix and intercepts, stored as `<task>.npz` (no pickle) plus `<task>.json` (labels, metadata) in a
model directory. Sub-linear tf × idf, L2-normalised, exactly as scikit-learn's TfidfVectorizer computes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlp.features import FEATURE_VERSION, _features_cached, feature_list

TASKS = ("sentiment", "intent")


@dataclass
class LinearModel:
    task: str
    labels: list[str]
    vocab: dict[str, int]
    idf: np.ndarray  # (n_features,) float32
    coef: np.ndarray  # (n_features, n_labels) float32 — row per feature so a message gathers a few rows
    intercept: np.ndarray  # (n_labels,)
    meta: dict

    # -- inference -------------------------------------------------------------------------------------------
    def matrix(self, texts: Sequence[str]):
        """Tf-idf rows (scipy CSR, L2-normalised) of `texts` over this model's vocabulary."""
        from scipy.sparse import csr_matrix

        get = self.vocab.get
        indptr = [0]
        indices: list[int] = []
        counts: list[int] = []
        for text in texts:
            keys, cnts = _features_cached(text)
            found = list(map(get, keys))  # C-level lookups; unknown features are None
            if None in found:
                pairs = [(j, c) for j, c in zip(found, cnts, strict=True) if j is not None]
                indices += [j for j, _ in pairs]
                counts += [c for _, c in pairs]
            else:
                indices += found
                counts += cnts
            indptr.append(len(indices))
        idx = np.asarray(indices, dtype=np.int32)
        data = (1.0 + np.log(np.asarray(counts, dtype=np.float32))) * self.idf[idx]
        ptr = np.asarray(indptr, dtype=np.int64)
        sq = np.add.reduceat(data * data, ptr[:-1]) if len(data) else np.zeros(len(texts), dtype=np.float32)
        sq[ptr[:-1] == ptr[1:]] = 0.0  # reduceat repeats a value for empty rows
        norms = np.sqrt(sq)
        norms[norms == 0] = 1.0
        data /= np.repeat(norms, np.diff(ptr)).astype(np.float32)
        return csr_matrix((data, idx, ptr), shape=(len(texts), len(self.idf)))

    def scores(self, texts: Sequence[str], x=None) -> np.ndarray:
        """Raw decision scores, shape (len(texts), n_labels); `x` reuses a matrix over the same vocabulary."""
        x = self.matrix(texts) if x is None else x
        return np.asarray(x @ self.coef, dtype=np.float32) + self.intercept

    def proba(self, texts: Sequence[str], x=None) -> np.ndarray:
        s = self.scores(texts, x)
        s -= s.max(axis=1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=1, keepdims=True)
        return s

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.labels[i] for i in self.scores(texts).argmax(axis=1)]

    # -- storage ---------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        words = sorted(self.vocab, key=self.vocab.__getitem__)
        np.savez_compressed(
            d / f"{self.task}.npz",
            vocab=np.array(words, dtype=np.str_),
            idf=self.idf.astype(np.float16),
            coef=self.coef.astype(np.float16),
            intercept=self.intercept.astype(np.float32),
        )
        meta = {**self.meta, "task": self.task, "labels": self.labels, "feature_version": FEATURE_VERSION}
        (d / f"{self.task}.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, task: str) -> LinearModel:
        d = Path(directory)
        meta = json.loads((d / f"{task}.json").read_text(encoding="utf-8"))
        if meta.get("feature_version") != FEATURE_VERSION:
            raise ValueError(
                f"{d}: model built with feature version {meta.get('feature_version')}, need {FEATURE_VERSION}"
            )
        with np.load(d / f"{task}.npz", allow_pickle=False) as z:
            vocab = {w: i for i, w in enumerate(z["vocab"].tolist())}
            return cls(
                task=task,
                labels=list(meta["labels"]),
                vocab=vocab,
                idf=z["idf"].astype(np.float32),
                coef=np.ascontiguousarray(z["coef"].astype(np.float32)),
                intercept=z["intercept"].astype(np.float32),
                meta=meta,
            )

    @staticmethod
    def exists(directory: str | Path, task: str) -> bool:
        d = Path(directory)
        return (d / f"{task}.json").is_file() and (d / f"{task}.npz").is_file()

    def nbytes(self) -> int:
        """Approximate memory held by the loaded model (arrays + vocabulary dict)."""
        import sys

        vocab = sys.getsizeof(self.vocab) + sum(sys.getsizeof(k) for k in self.vocab)
        return int(self.coef.nbytes + self.idf.nbytes + self.intercept.nbytes + vocab)


# ---------------------------------------------------------------------------------------------------------------
def _fit_nb(x, y: np.ndarray, fit: Callable) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """NB-LR: per label k, r = log(p_k / q_k) with p_k, q_k the add-one smoothed, normalised feature totals in and
    outside k; a binary logistic regression on x ⊙ r; its weights w give coefficients w ⊙ r. Two labels need one
    model (the second label against the first)."""
    classes = sorted(set(y.tolist()))
    coef, intercept = [], []
    for k in classes[1:] if len(classes) == 2 else classes:
        inside = y == k
        p = 1.0 + np.asarray(x[inside].sum(axis=0), dtype=np.float64).ravel()
        q = 1.0 + np.asarray(x[~inside].sum(axis=0), dtype=np.float64).ravel()
        r = np.log(p / p.sum()) - np.log(q / q.sum())
        clf = fit(x.multiply(r.astype(np.float32)).tocsr(), inside.astype(np.int8))
        coef.append(clf.coef_[0] * r)
        intercept.append(clf.intercept_[0])
    return np.asarray(coef), np.asarray(intercept), classes


def _identity(x: list[str]) -> list[str]:
    return x


def train(
    texts: Sequence[str],
    labels: Sequence[str],
    task: str,
    *,
    c: float = 8.0,
    min_df: int = 2,
    seed: int = 13,
    progress: Callable[[str], None] | None = None,
    sample_weight: Sequence[float] | None = None,
    class_weight: str | None = "balanced",
    nb: bool | None = None,
) -> LinearModel:
    """Fit a model on `texts`/`labels` (scikit-learn needed here only); `nb` (default: for sentiment) fits NB-LR."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    started = time.monotonic()
    say = progress or (lambda _msg: None)
    feats: list[list[str]] = []
    step = max(1, len(texts) // 50)
    for i, text in enumerate(texts):
        feats.append(feature_list(text))
        if i % step == 0 or i == len(texts) - 1:
            say(f"features {i + 1}/{len(texts)}")
    vectorizer = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=min_df, dtype=np.float32)
    x = vectorizer.fit_transform(feats)
    say(f"fit {x.shape[0]} rows × {x.shape[1]} features")
    # "balanced": rare labels (VSFC's 4 % neutral) weigh as much as frequent ones — what macro-F1 rewards.
    nb = task == "sentiment" if nb is None else nb

    def fit(x, y):
        clf = LogisticRegression(C=c, max_iter=3000, random_state=seed, solver="lbfgs", class_weight=class_weight)
        return clf.fit(x, y, sample_weight=sample_weight)

    y = np.asarray([str(lab) for lab in labels])
    if nb:
        coef, intercept, classes = _fit_nb(x, y, fit)
    else:
        clf = fit(x, y)
        coef, intercept, classes = clf.coef_, clf.intercept_, [str(x) for x in clf.classes_]
    if len(classes) == 2:  # binary: one row (for the second label); expand to one column per label
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    vocab = {k: int(v) for k, v in vectorizer.vocabulary_.items()}
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    meta = {
        "trained_at": None,  # left out on purpose: two builds of the same corpus must be byte-identical
        "rows": len(texts),
        "label_counts": dict(sorted(counts.items())),
        "c": c,
        "min_df": min_df,
        "class_weight": class_weight,
        "seed": seed,
        "algorithm": ("NB-LR, one-vs-rest" if nb else "multinomial logistic regression")
        + " (scikit-learn lbfgs) over tf-idf word + char n-grams",
    }
    say(f"done in {time.monotonic() - started:.1f}s")
    return LinearModel(
        task=task,
        labels=classes,
        vocab=vocab,
        idf=vectorizer.idf_.astype(np.float32),
        coef=np.ascontiguousarray(coef.T.astype(np.float32)),
        intercept=np.asarray(intercept, dtype=np.float32),
        meta=meta,
    )
