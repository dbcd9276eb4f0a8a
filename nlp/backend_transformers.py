"""Transformers backend: local Hugging Face sequence-classification models (`HOPTHU_NLP_BACKEND=transformers`).

`HOPTHU_NLP_MODEL_DIR` is either one model directory (its `config.json` labels tell the task: the three
sentiments, or intents) or a directory with `sentiment/` and/or `intent/` model directories — what
`hopthu nlp train --backend transformers --base DIR --out OUT` writes. A task without a transformers model comes
from the classic shipped model. Nothing is downloaded: models load with `local_files_only=True`.

Needs the optional extra: `pip install 'hopthu[transformers]'` (transformers and torch; a CPU build of torch
is enough). Inference runs in batches under `torch.inference_mode()`; the inbox calls it from its NLP worker
thread (inbox/enrich.py), never on the event loop.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nlp import SENTIMENTS, Backend
from nlp.normalize import normalize

BATCH_SIZE = 32
MAX_LENGTH = 128


def _task_of(model_dir: Path) -> str | None:
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    labels = set((config.get("id2label") or {}).values())
    return "sentiment" if labels and labels <= set(SENTIMENTS) else "intent"


def task_dirs(model_dir: str | Path) -> dict[str, Path]:
    d = Path(model_dir)
    found: dict[str, Path] = {}
    for task in ("sentiment", "intent"):
        if (d / task / "config.json").is_file():
            found[task] = d / task
    if (d / "config.json").is_file():
        task = _task_of(d)
        if task:
            found.setdefault(task, d)
    return found


def is_transformers_dir(model_dir: str | Path) -> bool:
    return bool(task_dirs(model_dir))


def _prepare(texts: Sequence[str]) -> list[str]:
    return [normalize(t or "") or "." for t in texts]


class _TaskModel:
    def __init__(self, directory: Path) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(directory, local_files_only=True)
        self.model.eval()
        id2label = self.model.config.id2label
        self.labels = [str(id2label[i]) for i in range(len(id2label))]

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        torch = self.torch
        out = []
        prepared = _prepare(texts)
        with torch.inference_mode():
            for i in range(0, len(prepared), BATCH_SIZE):
                enc = self.tokenizer(
                    prepared[i : i + BATCH_SIZE], padding=True, truncation=True, max_length=MAX_LENGTH,
                    return_tensors="pt",
                )  # fmt: skip
                if "token_type_ids" not in self.tokenizer.model_input_names:
                    enc.pop("token_type_ids", None)
                logits = self.model(**enc).logits
                out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        return np.concatenate(out, axis=0) if out else np.zeros((0, len(self.labels)), dtype=np.float32)

    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(self, model_dir: str | Path) -> None:
        dirs = task_dirs(model_dir)
        if not dirs:
            raise FileNotFoundError(f"{model_dir}: no Hugging Face model (config.json) for sentiment or intent")
        self.models: dict[str, _TaskModel] = {task: _TaskModel(d) for task, d in dirs.items()}
        self.fallback = None
        if len(self.models) < 2:
            from nlp.backend_classic import ClassicBackend

            self.fallback = ClassicBackend(None)

    def proba(self, task: str, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        model = self.models.get(task)
        if model is None:
            return self.fallback.proba(task, texts)  # type: ignore[union-attr]
        return model.labels, model.proba(texts)

    def memory_bytes(self) -> int:
        total = sum(m.nbytes() for m in self.models.values())
        return total + (self.fallback.memory_bytes() if self.fallback else 0)


def fine_tune(
    texts: Sequence[str],
    labels: Sequence[str],
    task: str,
    *,
    base: str | Path,
    out: str | Path,
    epochs: float = 3.0,
    batch_size: int = 16,
    learning_rate: float = 5e-5,
    progress: Callable[[str], None] | None = None,
    seed: int = 13,
) -> Path:
    """Fine-tune the local model `base` on (texts, labels); writes `out/<task>/` and returns it."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    say = progress or (lambda _m: None)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    names = sorted(set(labels))
    label2id = {name: i for i, name in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, local_files_only=True, num_labels=len(names), id2label=dict(enumerate(names)), label2id=label2id,
        ignore_mismatched_sizes=True,
    )  # fmt: skip
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    prepared = _prepare(texts)
    y = [label2id[label] for label in labels]
    order = list(range(len(prepared)))
    steps_per_epoch = (len(order) + batch_size - 1) // batch_size
    total = max(1, round(epochs * steps_per_epoch))
    rng = random.Random(seed)
    step = 0
    while step < total:
        rng.shuffle(order)
        for i in range(0, len(order), batch_size):
            if step >= total:
                break
            idx = order[i : i + batch_size]
            enc = tokenizer(
                [prepared[j] for j in idx], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
            )
            if "token_type_ids" not in tokenizer.model_input_names:
                enc.pop("token_type_ids", None)
            loss = model(**enc, labels=torch.tensor([y[j] for j in idx])).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            say(f"loss {loss.item():.4f} step {step}/{total}")
    target = Path(out) / task
    target.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
