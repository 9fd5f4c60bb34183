"""Recorded Binance frames and REST answers, loaded for the fake exchange to replay verbatim.

Two capture layouts are read: one frame per line (JSON lines), and cryptofeed's recordings,
`<receive epoch s>: <frame>` per line with the subscription URL repeated now and then. A raw
(single-stream) event is replayed inside the combined wrapper /stream would have put it in;
its own bytes are kept as they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

_TIMED = re.compile(r"^(?P<at>\d+(?:\.\d+)?): (?P<frame>\{.*)$")
_RAW_STREAMS = {"24hrTicker": "ticker", "24hrMiniTicker": "miniTicker", "aggTrade": "aggTrade",
                "trade": "trade", "depthUpdate": "depth"}


@dataclass(frozen=True)
class ReplayFrame:
    """One recorded frame: its stream name, the text to send, and when it was received."""

    stream: str
    text: str
    received_at: float | None = None


def load_frames(path: str | Path) -> list[ReplayFrame]:
    """Read every frame of a capture file, in order, skipping lines that are not frames."""
    frames = []
    for raw_line in Path(path).read_text().splitlines():
        line = raw_line.strip()
        match = _TIMED.match(line)
        at, text = (float(match["at"]), match["frame"]) if match else (None, line)
        if text.startswith("{"):
            frames.append(_frame(text, at))
    return frames


def _frame(text: str, at: float | None) -> ReplayFrame:
    message = orjson.loads(text)
    if "stream" in message and "data" in message:
        return ReplayFrame(message["stream"], text, at)
    stream = f"{str(message.get('s', '')).lower()}@{_raw_stream(message)}"
    return ReplayFrame(stream, f'{{"stream":"{stream}","data":{text}}}', at)


def _raw_stream(event: dict[str, Any]) -> str:
    kind = event.get("e")
    if kind == "kline":
        return f"kline_{event['k']['i']}"
    if kind is None and "u" in event and "b" in event:
        return "bookTicker"
    return _RAW_STREAMS.get(kind, str(kind))


def load_klines(path: str | Path) -> list[list[Any]]:
    """A recorded GET /api/v3/klines answer (a JSON array of 12-column rows)."""
    rows = orjson.loads(Path(path).read_bytes())
    if not isinstance(rows, list):
        raise ValueError(f"{path}: not a klines answer (a JSON array of rows)")
    return rows
