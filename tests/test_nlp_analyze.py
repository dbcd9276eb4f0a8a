"""The nlp package's public API, normalisation, the shipped model and the `hopthu nlp` CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import nlp
from inbox.cli import main as hopthu
from nlp import INTENTS, SHIPPED_MODEL_DIR, analyze, analyze_batch, normalize


@pytest.fixture(autouse=True)
def _fresh_backend(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HOPTHU_NLP_MODEL_DIR", raising=False)
    monkeypatch.delenv("HOPTHU_NLP_BACKEND", raising=False)
    nlp.reset_backend()
    yield
    nlp.reset_backend()


def test_result_is_a_json_serialisable_record() -> None:
    a = analyze("sdt em 0912 345 678, lấy 2 cái size M nhé")
    d = a.to_dict()
    assert set(d) == {"sentiment", "sentiment_score", "intent", "intent_confidence", "entities"}
    assert json.loads(json.dumps(d, ensure_ascii=False)) == d
    assert d["sentiment"] in ("negative", "neutral", "positive") and -1 <= d["sentiment_score"] <= 1
    assert d["intent"] in INTENTS and 0 <= d["intent_confidence"] <= 1
    assert a["intent"] == a.intent
    assert {"type": "phone", "normalized": "+84912345678"}.items() <= d["entities"][0].items()


@pytest.mark.parametrize(
    "text",
    [
        "còn size M không ạ",
        "ship về Đà Nẵng bao lâu",
        "con size M ko shop",
        "phí ship về Cần Thơ bao nhiêu vậy",
        "cho em xin giá cái váy maxi",
        "shop ơi áo này chất liệu gì vậy",
        "bao giờ em nhận được hàng ạ",
    ],
)
def test_shop_questions_are_neutral_not_negative(text: str) -> None:
    assert analyze(text).sentiment == "neutral"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("chào shop", "greeting"),
        ("cảm ơn shop nhiều nha", "thanks_bye"),
        ("cái này giá bao nhiêu vậy", "ask_price"),
        ("còn size L màu đen không shop", "ask_availability"),
        ("áo này chất vải gì vậy, có bị xù không", "ask_product_info"),
        ("chốt đơn 2 cái size M nhé", "order"),
        ("đơn hàng của em giao tới đâu rồi", "order_status"),
        ("ship về Đà Nẵng bao lâu", "shipping"),
        ("cho em xin số tài khoản để chuyển khoản", "payment"),
        ("shop có mã giảm giá không", "promotion"),
        ("em muốn đổi sang size L", "return_refund"),
        ("giao sai màu rồi, shop làm ăn chán quá", "complaint"),
        ("shop mở cửa đến mấy giờ", "store_info"),
        ("cho em gặp nhân viên tư vấn", "human_handoff"),
    ],
)
def test_intents_of_typical_messages(text: str, intent: str) -> None:
    assert analyze(text).intent == intent


@pytest.mark.parametrize(
    ("text", "sentiment"),
    [
        ("hàng đẹp lắm, giao nhanh, cảm ơn shop 😍", "positive"),
        ("sản phẩm tốt, đóng gói cẩn thận", "positive"),
        ("chất lượng quá tệ, không giống hình", "negative"),
        ("hang loi roi, shop lam an chan qua", "negative"),
        ("đặt cả tuần chưa thấy hàng đâu 😡", "negative"),
    ],
)
def test_opinions(text: str, sentiment: str) -> None:
    assert analyze(text).sentiment == sentiment


def test_batch_matches_single_and_handles_empty_text() -> None:
    texts = ["chào shop", "", "hàng lỗi, đổi giúp em", "ok"]
    batch = analyze_batch(texts)
    assert [b.to_dict() for b in batch] == [analyze(t).to_dict() for t in texts]
    assert analyze_batch([]) == []
    assert batch[1].intent in INTENTS and batch[1].entities == []


def test_normalize_for_faq_matching() -> None:
    assert normalize("Hoà bình THUỶ") == "hòa bình thủy"
    assert normalize("sp này còn ko shop??") == "sản phẩm này còn không shop??"
    assert normalize("đẹppppp quáaaa") == "đẹp quá"
    assert normalize("a/c ib e nha") == "anh chị inbox em nha"
    assert normalize("Đà Nẵng ship bn", fold=True) == "da nang ship bao nhieu"
    assert normalize("số tk bao nhiêu") == "số tài khoản bao nhiêu"
    assert normalize("good xoong") == "good xoong"  # real double letters stay
    assert "emopos" in normalize("đẹp quá 😍", cues=True) and "emoneg" in normalize("chán :(", cues=True)


def test_shipped_model_is_small_and_documented() -> None:
    size = sum(p.stat().st_size for p in SHIPPED_MODEL_DIR.iterdir())
    assert size <= 5 * 1024 * 1024
    meta = json.loads((SHIPPED_MODEL_DIR / "intent.json").read_text(encoding="utf-8"))
    assert sorted(meta["labels"]) == sorted(INTENTS)
    assert "nlp/corpus" in meta["corpus"]
    intents_doc = (Path(nlp.__file__).parent / "INTENTS.md").read_text(encoding="utf-8")
    for intent in INTENTS:
        assert f"`{intent}`" in intents_doc


# -- CLI ------------------------------------------------------------------------------------------------------
def _write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


TOY = [
    ("giao hàng nhanh, sản phẩm tốt", "positive"),
    ("hàng đẹp, rất hài lòng", "positive"),
    ("tuyệt vời, sẽ ủng hộ tiếp", "positive"),
    ("đóng gói cẩn thận, chất lượng tốt", "positive"),
    ("hàng lỗi, thất vọng", "negative"),
    ("chất lượng kém, không giống hình", "negative"),
    ("giao chậm, đóng gói sơ sài", "negative"),
    ("tệ, không nên mua", "negative"),
] * 3


def test_cli_analyze_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert hopthu(["nlp", "analyze", "còn size M không ạ"]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out["sentiment"] == "neutral" and out["intent"] == "ask_availability"


def test_cli_eval_last_line_is_macro_f1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_csv(tmp_path / "toy.csv", TOY)
    assert hopthu(["nlp", "eval", str(path), "--task", "sentiment"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("macro_f1=") and float(lines[-1].split("=")[1]) >= 0.9
    assert any(line.startswith("accuracy=") for line in lines)


def test_cli_eval_with_a_named_label_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [("chào shop", "greeting", "x"), ("phí ship về Huế bao nhiêu", "shipping", "y")] * 3
    path = _write_csv(tmp_path / "multi.csv", rows, header=("text", "intent", "other"))
    assert hopthu(["nlp", "eval", str(path), "--task", "intent", "--label-column", "intent"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "macro_f1=1.0000"


def test_cli_eval_rejects_a_file_without_labels(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "bad.csv", [("x", "y")], header=("text", "nothing"))
    with pytest.raises(SystemExit, match="label column"):
        hopthu(["nlp", "eval", str(path), "--task", "sentiment"])


def test_cli_train_makes_a_model_dir_used_by_env_and_by_model_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write_csv(tmp_path / "toy.csv", TOY)
    out = tmp_path / "model"
    assert hopthu(["nlp", "train", str(path), "--task", "sentiment", "--out", str(out), "--min-df", "1"]) == 0
    captured = capsys.readouterr()
    assert "[" in captured.err and "100.0%" in captured.err  # the progress bar
    assert json.loads(captured.out.strip().splitlines()[-1])["labels"] == ["negative", "positive"]
    assert (out / "sentiment.npz").is_file()

    assert hopthu(["nlp", "eval", str(path), "--task", "sentiment", "--model", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "macro_f1=1.0000"

    monkeypatch.setenv("HOPTHU_NLP_MODEL_DIR", str(out))
    nlp.reset_backend()
    result = analyze("hàng lỗi, thất vọng")
    assert result.sentiment == "negative"
    assert result.intent == analyze("hàng lỗi, thất vọng").intent  # intent still from the shipped model
    assert nlp.get_backend().sentiment_model.labels == ["negative", "positive"]
