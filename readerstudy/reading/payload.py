"""The answer a reader's page posts, parsed strictly: anything malformed is refused with a message.

Strict means: UTF-8 JSON only, no NaN/Infinity and no number that overflows to
infinity (``1e400``), a limit on size and on nesting depth checked before
parsing (so a deeply nested body cannot exhaust the parser's recursion), and
every text in the payload, keys included, normalised to NFC with NUL
characters and lone surrogates refused (PostgreSQL cannot store either, and
no reader typed them). ``reading_ms`` is a non-negative integer and never a
boolean (JSON ``true`` is not "1 ms").
"""

from __future__ import annotations

import json
import math
import unicodedata
import uuid
from dataclasses import dataclass, field

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 12
MAX_CLIENT_BYTES = 20_000
MAX_READING_MS = 24 * 3600 * 1000
MAX_INT_DIGITS = 18


class PayloadError(ValueError):
    """A payload that cannot be stored; its message is shown to the client."""


@dataclass(frozen=True)
class AnswerPayload:
    idempotency_key: uuid.UUID
    answer: str
    reading_ms: int
    confidence: int | None = None
    questions: dict[str, str | None] = field(default_factory=dict)
    client: dict = field(default_factory=dict)


def parse_answer(body: bytes) -> AnswerPayload:
    """The answer in ``body``; PayloadError with a message for anything malformed."""
    data = strict_json(body)
    if not isinstance(data, dict):
        raise PayloadError("malformed answer: expected a JSON object with idempotency_key, answer and reading_ms")
    # "answer" may be absent or null where the case does not ask it (a grading block asks only its
    # further questions); the answer view refuses an empty answer wherever the case asks one.
    missing = [name for name in ("idempotency_key", "reading_ms") if name not in data]
    if missing:
        raise PayloadError(f"malformed answer: missing {', '.join(missing)}")
    try:
        key = uuid.UUID(data["idempotency_key"]) if isinstance(data["idempotency_key"], str) else None
    except ValueError:
        key = None
    if key is None:
        raise PayloadError("idempotency_key must be a UUID")
    if data.get("answer") is None:
        data["answer"] = ""
    if not isinstance(data["answer"], str):
        raise PayloadError("answer must be text")
    client = data.get("client") or {}
    if not isinstance(client, dict):
        raise PayloadError("client must be an object")
    if len(json.dumps(client)) > MAX_CLIENT_BYTES:
        raise PayloadError(f"client state is larger than {MAX_CLIENT_BYTES} bytes")
    return AnswerPayload(
        idempotency_key=key,
        answer=data["answer"],
        reading_ms=_reading_ms(data["reading_ms"]),
        confidence=_confidence(data.get("confidence")),
        questions=_questions(data.get("questions")),
        client=client,
    )


def strict_json(body: bytes, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH):
    """Parse ``body`` as strict JSON with every text NFC-normalised; PayloadError otherwise."""
    if len(body) > max_bytes:
        raise PayloadError(f"the request is larger than {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("the request is not UTF-8") from None
    if _depth(text) > max_depth:
        raise PayloadError(f"the JSON is nested more than {max_depth} levels deep")
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except PayloadError:
        raise
    except (ValueError, RecursionError):
        raise PayloadError("malformed answer: the request is not valid JSON") from None
    return _clean(data)


def _depth(text: str) -> int:
    """Deepest nesting of arrays and objects, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str):
    raise PayloadError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise PayloadError(f"{text[:20]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise PayloadError(f"{text[:20]}… is out of range")
    return int(text)


def _clean(value):
    """Every text (keys too) checked and normalised, recursively."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            cleaned[clean_text(key)] = _clean(item)
        return cleaned
    return value


def clean_text(text: str) -> str:
    """NFC-normalised text; PayloadError for NUL or a lone surrogate."""
    if "\x00" in text:
        raise PayloadError("text may not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError("text contains an unpaired surrogate (not valid Unicode)") from None
    return unicodedata.normalize("NFC", text)


def _reading_ms(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_READING_MS:
        raise PayloadError(f"reading_ms must be a whole number of milliseconds from 0 to {MAX_READING_MS}")
    return value


def _confidence(value) -> int | None:
    """1 to 5 (the page sends the radio button's text), None when not given."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value in {"1", "2", "3", "4", "5"}:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    raise PayloadError("confidence must be 1 to 5")


def _questions(value) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError("questions must be an object")
    answers = {}
    for key, given in value.items():
        if given is None or isinstance(given, str):
            answers[key] = given
        elif isinstance(given, int) and not isinstance(given, bool):
            answers[key] = str(given)
        else:
            raise PayloadError(f"the answer to {key[:50]} must be text")
    return answers
