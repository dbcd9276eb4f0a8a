"""Normalisation for real Vietnamese chat.

`normalize(text)` → lower-case NFC text with one tone-mark placement ("hoà" → "hòa", "thuỷ" → "thủy"), letters
repeated for emphasis squeezed ("đẹppppp" → "đẹp"), teencode and shop abbreviations expanded ("ko" → "không",
"sp" → "sản phẩm", "a/c" → "anh chị"), whitespace tidied. `normalize(text, fold=True)` also drops diacritics
("Đà Nẵng" → "da nang"), which is what matching against text typed without diacritics needs (FAQ matching, search).
`normalize(text, cues=True)` turns emoji and emoticons into sentiment cue words (`emopos`, `emoneg`), which the
classifier uses as features.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from nlp.text import fold as fold_text

__all__ = ["fold_text", "normalize", "place_tone_marks", "tokens"]

_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
_VOWELS = set("aăâeêioôơuưy")
_HATTED = set("ăâêôơư")

# Teencode and abbreviations seen in shop chat, as whole tokens (keys are lower-case, with or without diacritics).
TEENCODE = {
    "ko": "không", "k": "không", "kh": "không", "khg": "không", "kg": "không", "hok": "không", "hông": "không",
    "hong": "không", "khum": "không", "hem": "không", "kô": "không", "khôg": "không", "hk": "không", "k0": "không",
    "dc": "được", "đc": "được", "dk": "được", "đk": "được", "duoc": "được", "đươc": "được",
    "sp": "sản phẩm", "sf": "sản phẩm", "ib": "inbox", "inb": "inbox", "a/c": "anh chị", "ac": "anh chị",
    "bn": "bao nhiêu", "bnh": "bao nhiêu", "bnhieu": "bao nhiêu", "ntn": "như thế nào", "j": "gì", "gi": "gì",
    "z": "vậy", "v": "vậy", "dzậy": "vậy", "r": "rồi", "rùi": "rồi", "oy": "rồi", "mk": "mình", "mik": "mình",
    "mh": "mình", "mn": "mọi người", "vs": "với", "trc": "trước", "ns": "nói", "cx": "cũng", "cg": "cũng",
    "tks": "cảm ơn", "thks": "cảm ơn", "thanks": "cảm ơn", "thank": "cảm ơn", "thanks you": "cảm ơn", "tk": "cảm ơn",
    "camon": "cảm ơn", "cám": "cảm", "sđt": "số điện thoại", "sdt": "số điện thoại", "đt": "điện thoại",
    "nt": "nhắn tin", "rep": "trả lời", "hnay": "hôm nay", "hum": "hôm", "ngta": "người ta", "đag": "đang",
    "dag": "đang", "nhìu": "nhiều", "wa": "quá", "qa": "quá", "thik": "thích", "iu": "yêu", "bít": "biết",
    "bik": "biết", "mún": "muốn", "lun": "luôn", "ak": "à", "ah": "à", "uk": "ừ", "uh": "ừ", "ukm": "ừ",
    "oke": "ok", "okie": "ok", "okela": "ok", "oki": "ok", "okê": "ok", "đx": "được", "e": "em", "a": "anh",
    "c": "chị", "ad": "admin", "sop": "shop", "sôp": "shop", "síp": "ship", "sip": "ship",
    "nv": "nhân viên", "ck": "chuyển khoản", "stk": "số tài khoản", "tgian": "thời gian",
    "tg": "thời gian", "bh": "bao giờ", "bjo": "bao giờ", "bgio": "bao giờ", "ng": "người",
    "dt": "điện thoại", "đthoai": "điện thoại", "mng": "mọi người", "trl": "trả lời", "lm": "làm",
    "nhé": "nhé", "nhe": "nhé", "nha": "nha", "nhá": "nhé", "hqua": "hôm qua", "hàg": "hàng", "hag": "hàng",
    "mí": "mấy", "nhg": "nhưng", "nhưg": "nhưng", "ms": "mới", "vc": "việc",
}  # fmt: skip
# "tk" is both "thanks" and "tài khoản"; the second wins only after chuyển/số.
_TEENCODE_CTX = {("số", "tk"): "tài khoản", ("chuyển", "tk"): "tài khoản", ("số", "tài khoản"): "tài khoản"}

_POS_EMOJI = set("😀😃😄😁😆😊☺🙂😍🥰😘😗😙😚😋🤗👍👌💯❤💕💖💗💓💞💘💝🌹🎉👏🙏😻✨⭐🌟💪😇🤩")
_NEG_EMOJI = set("😞😟😠😡🤬😤😢😭😩😫😒🙁☹😣😖😑😐👎💔😓😥😰😱🤮🤢😪😔🙄")
_EMOTICONS = [
    (re.compile(r"(?<!\w)(?::|=)-?(?:\)+|D+|>)|\^[_\-.]?\^|<3+|:v|=\]+|:3"), " emopos "),
    (re.compile(r"(?<!\w)(?::|=)-?(?:\(+|'\(|/)|T[_.]T|-_-|:\s?<|>:\(|:\(\("), " emoneg "),
]
_REPEAT = re.compile(r"([^\W\d_])\1{2,}")
_REPEAT_TONED = re.compile(r"([^\W\d_])([a-zđ])\2+")


def _squeeze_toned(m: re.Match) -> str:
    # "quáaaa" → "quá": a toned vowel followed by its bare letter, repeated
    return m.group(1) if fold_text(m.group(1)) == m.group(2) else m.group()


_TOKEN = re.compile(r"\w+(?:[/.]\w+)*|[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")


def _place_tone(word: str) -> str:
    """Put the tone mark on the vowel the (old, widespread) convention uses: hòa, thủy, quý, giữa, người."""
    decomposed = unicodedata.normalize("NFD", word)
    tones = [c for c in decomposed if c in _TONES]
    if len(tones) != 1:
        return word
    bare = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))
    lower = bare.lower()
    positions = [i for i, ch in enumerate(lower) if ch in _VOWELS]
    if not positions:
        return word
    # "qu" and "gi" + vowel: the u / i belongs to the consonant.
    if lower.startswith("qu") and len(positions) > 1 and positions[0] == 1:
        positions = positions[1:]
    elif lower.startswith("gi") and len(positions) > 1 and positions[0] == 1:
        positions = positions[1:]
    # The vowel cluster is the first contiguous run.
    run = [positions[0]]
    for p in positions[1:]:
        if p == run[-1] + 1:
            run.append(p)
        else:
            break
    hatted = [p for p in run if lower[p] in _HATTED]
    ends_open = run[-1] == len(lower) - 1
    if hatted:
        target = hatted[-1]  # "ươ" → on ơ
    elif len(run) == 1:
        target = run[0]
    elif len(run) >= 3:
        target = run[1]
    elif ends_open:
        target = run[0]  # hòa, thủy, mía, múa
    else:
        target = run[-1]  # hoàng, toán, tuyến
    out = bare[: target + 1] + tones[0] + bare[target + 1 :]
    return unicodedata.normalize("NFC", out)


@lru_cache(maxsize=65536)
def place_tone_marks(word: str) -> str:
    if not word or not any(not ch.isascii() for ch in word):
        return word
    return _place_tone(word)


_POS_EMOJI_RE = re.compile("[" + "".join(sorted(_POS_EMOJI)) + "]")
_NEG_EMOJI_RE = re.compile("[" + "".join(sorted(_NEG_EMOJI)) + "]")
_OTHER_SYMBOLS = re.compile("[\u2190-\u2bff\U0001f000-\U0001faff\ufe0f\u200d]")


def _cues(text: str) -> str:
    for pattern, repl in _EMOTICONS:
        text = pattern.sub(repl, text)
    if text.isascii():
        return text
    text = _POS_EMOJI_RE.sub(" emopos ", text)
    text = _NEG_EMOJI_RE.sub(" emoneg ", text)
    return _OTHER_SYMBOLS.sub(" ", text)


def tokens(text: str) -> list[str]:
    """Syllable/punctuation tokens, underthesea's regex tokenizer rules simplified for speed."""
    return _TOKEN.findall(text)


@lru_cache(maxsize=32768)
def normalize(text: str, *, fold: bool = False, cues: bool = False) -> str:
    """Normalised chat text; see the module docstring."""
    text = unicodedata.normalize("NFC", text)
    if cues:
        text = _cues(text)
    text = _REPEAT.sub(r"\1", _REPEAT_TONED.sub(_squeeze_toned, text.lower()))
    words = _SPACES.split(text.strip())
    out: list[str] = []
    prev = ""
    for raw in words:
        # keep trailing punctuation apart so "ko?" still expands
        core = raw.rstrip("?!.,;:…")
        tail = raw[len(core) :]
        lead = core[: len(core) - len(core.lstrip("(\"'"))]
        core = core[len(lead) :]
        w = place_tone_marks(core)
        w = _TEENCODE_CTX.get((prev, w)) or TEENCODE.get(w, w)
        out.append(lead + w + tail)
        prev = w
    result = " ".join(out)
    return fold_text(result) if fold else result
