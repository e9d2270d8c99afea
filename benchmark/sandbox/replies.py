"""What a model's worker sends back, in a format its parent reads without unpickling it.

The worker runs submission code, so every byte it sends is the submission's to choose; and
unpickling runs whatever code a pickle names. A worker that wrote a pickle of its own onto its
pipe would run code in the parent, next to every cohort's labels. So replies are JSON (and the
raw bytes of a tar of artefacts): task names, predictions as ids and numbers, an exception as
its type's name, arguments and notes. The parent rebuilds only builtin exceptions and the
harness's own; any other type comes back as a ``RuntimeError`` naming it.
"""

from __future__ import annotations

import builtins
import importlib
import json
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import pandas as pd

# Every reply is bounded before it is read into memory (multiprocessing checks a message's
# length first): a message by what a valid one can hold (predictions: by the predicted cohort's
# ids, :func:`predictions_bound`), a fit's artefacts by what a model keeps (weights: megabytes).
MAX_MESSAGE = 1 << 20  # tasks, an acknowledgement, an exception with its traceback
MAX_ARTEFACTS = 1 << 28  # 256 MiB


class ReplyError(RuntimeError):
    """A worker's reply is not one the harness sends: the submission wrote on its pipe."""


def send_ok(conn: Connection, step: str, value: Any) -> None:
    """The worker's answer to ``step``: tasks, predictions, artefacts (bytes) or nothing."""
    if step == "save_artefacts":
        conn.send_bytes(json.dumps({"status": "ok", "kind": "bytes"}).encode())
        conn.send_bytes(value)
        return
    if step == "predict":
        payload = {"status": "ok", "kind": "predictions", "value": _plain_predictions(value)}
    elif step == "tasks":
        payload = {"status": "ok", "kind": "tasks", "value": [str(t) for t in value]}
    else:
        payload = {"status": "ok", "kind": "none"}
    conn.send_bytes(json.dumps(payload, default=repr).encode())


def send_error(conn: Connection, exc: BaseException) -> None:
    """An exception as its type, arguments (JSON-able ones, else its text) and notes."""
    kind = type(exc)
    args = list(exc.args)
    try:
        json.dumps(args, allow_nan=False)
    except (TypeError, ValueError):
        args = [str(exc)]
    payload = {
        "status": "error",
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "args": args,
        "notes": [str(n) for n in getattr(exc, "__notes__", [])],
    }
    conn.send_bytes(json.dumps(payload).encode())


def send_current_error(conn: Connection, exc: BaseException) -> None:
    """``send_error`` with the worker's traceback as a note."""
    exc.add_note(f"in the model's worker process:\n{traceback.format_exc()}")
    send_error(conn, exc)


def predictions_bound(ids: Iterable[str], tasks: int) -> int:
    """The longest valid predictions reply for ``ids`` and ``tasks`` tasks: each id with a float
    (JSON: at most 24 characters) and separators, per task, plus an exception's room."""
    return MAX_MESSAGE + tasks * sum(len(str(i).encode()) + 40 for i in ids)


@dataclass(frozen=True)
class Raised:
    """The exception a worker's step raised, as :func:`value` returns it: apart from the errors
    of the pipe itself, which the caller handles as the worker's end."""

    error: BaseException


def receive(conn: Connection, max_bytes: int = MAX_MESSAGE) -> Any:
    """The value of the worker's next reply; its exception raised."""
    found = value(conn, read(conn, max_bytes))
    if isinstance(found, Raised):
        raise found.error
    return found


def read(conn: Connection, max_bytes: int = MAX_MESSAGE) -> dict[str, Any]:
    """The worker's next reply as JSON. Raises :class:`ReplyError` for anything the harness's
    worker code would not have sent, and for a message longer than ``max_bytes`` before reading
    it."""
    return _json(_recv(conn, max_bytes))


def value(conn: Connection, payload: dict[str, Any]) -> Any:
    """What a reply carries: tasks, predictions, artefact bytes (read next), nothing, or the
    worker's exception as :class:`Raised`."""
    status = payload.get("status")
    if status == "error":
        return Raised(_exception(payload))
    kind = payload.get("kind")
    if status != "ok" or kind not in ("bytes", "predictions", "tasks", "none"):
        raise ReplyError(f"a reply of unknown status {status!r} or kind {kind!r}")
    if kind == "bytes":
        return _recv(conn, MAX_ARTEFACTS)
    if kind == "tasks":
        return tuple(str(t) for t in _list(payload.get("value")))
    if kind == "predictions":
        return _predictions(payload.get("value"))
    return None


def _recv(conn: Connection, max_bytes: int) -> bytes:
    try:
        return conn.recv_bytes(max_bytes)
    except OSError as err:
        if "bad message length" in str(err):  # multiprocessing's word for one over the limit
            raise ReplyError(
                f"a reply of over {max_bytes} bytes, more than a valid one can be"
            ) from None
        raise


def _json(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ReplyError(
            f"a reply that is not the harness's JSON ({len(raw)} bytes starting {raw[:16]!r})"
        ) from None
    if not isinstance(payload, dict):
        raise ReplyError(f"a reply that is a {type(payload).__name__}, not an object")
    return payload


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ReplyError(f"a list expected in the reply, got {type(value).__name__}")
    return value


class _Shape:
    """Stands in for what a predict returned that is not a mapping of Series, so that
    ``check_predictions`` names its type as it would have in-process."""


def _plain_predictions(predictions: Any) -> Any:
    if not isinstance(predictions, Mapping):
        return {"type": type(predictions).__name__}
    plain: dict[str, Any] = {}
    for task, series in predictions.items():
        if isinstance(series, pd.Series):
            # Python's JSON writes floats exactly (shortest repr), NaN and infinities as tokens
            # it reads back; other objects as their repr, which check_predictions refuses.
            values = series.tolist()
            plain[str(task)] = {"ids": [str(i) for i in series.index], "values": values}
        else:
            plain[str(task)] = {"type": type(series).__name__}
    return {"tasks": plain}


def _predictions(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ReplyError("predictions of an unknown form")
    if "tasks" not in value:
        return type(str(value.get("type")), (_Shape,), {})()
    rebuilt: dict[str, Any] = {}
    for task, entry in dict(value["tasks"]).items():
        if not isinstance(entry, dict):
            raise ReplyError(f"predictions of task {task!r} in an unknown form")
        if "ids" not in entry:
            rebuilt[task] = type(str(entry.get("type")), (_Shape,), {})()
            continue
        ids, values = _list(entry["ids"]), _list(entry.get("values"))
        if len(ids) != len(values):
            raise ReplyError(f"predictions of task {task!r}: {len(ids)} ids, {len(values)} values")
        rebuilt[task] = pd.Series(values, index=pd.Index([str(i) for i in ids]), dtype=object)
    return rebuilt


def _exception(payload: Mapping[str, Any]) -> BaseException:
    """The worker's exception, rebuilt when its type is a builtin or the harness's own."""
    name = str(payload.get("type"))
    args = payload.get("args") if isinstance(payload.get("args"), list) else []
    module, _, qualname = name.rpartition(".")
    kind: Any = None
    if module == "builtins":
        kind = getattr(builtins, qualname, None)
    elif module.startswith("benchmark.") and "." not in qualname:
        try:
            kind = getattr(importlib.import_module(module), qualname, None)
        except ImportError:
            kind = None
    exc: BaseException
    try:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise TypeError
        exc = kind(*args)
    except Exception:  # noqa: BLE001 - a type we do not rebuild, or arguments it refuses
        text = ", ".join(str(a) for a in args)
        exc = RuntimeError(f"{name}: {text}")
    for note in payload.get("notes") or []:
        exc.add_note(str(note))
    return exc


__all__ = [
    "MAX_ARTEFACTS",
    "MAX_MESSAGE",
    "Raised",
    "ReplyError",
    "predictions_bound",
    "read",
    "receive",
    "send_current_error",
    "send_error",
    "send_ok",
    "value",
]
