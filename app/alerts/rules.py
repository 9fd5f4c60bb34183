"""A rule's JSON, checked field by field: what the API, the form and the CLI all submit.

`parse_rule(data, catalog)` returns a Draft (the columns to store) or raises RuleInvalid
with one {"field", "message"} per bad field, so nothing is saved from a bad request. Every
number is checked as text before it becomes a Decimal (no 1E+1000000), every text is
bounded and free of control characters. The catalog says what exists: the polled markets,
the streamed symbols and the poll interval (a `for` shorter than it could never hold).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.alerts.conditions import CONDITIONS
from app.alerts.metrics import METRICS, btc_market, market_of
from db.alert_model import (
    DEFAULT_REPEAT_SECONDS,
    DIRECTIONS,
    ERROR_MODES,
    NODATA_MODES,
    SEVERITIES,
    Subject,
)

DECIMAL = re.compile(r"^[+-]?\d{1,16}(\.\d{1,18})?$")
LABEL_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
PAYMENT_CODE = re.compile(r"^[a-z0-9_]{1,40}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
RESERVED_LABELS = {"alertname", "metric", "rule_id", "market", "exchange", "pair",
                   "other_market", "symbol"}
WEEK = 7 * 86400
MAX_LABELS = 20
MAX_NOTE = 2000
FIELDS = {"name", "metric", "market", "other", "symbol", "window_seconds", "filters",
          "condition", "threshold", "low", "high", "direction", "for_seconds",
          "keep_firing_for_seconds", "repeat_seconds", "nodata_seconds", "nodata_state",
          "error_state", "labels", "note", "notify", "enabled", "muted_until"}


class RuleInvalid(ValueError):
    """A rule that cannot be saved; `errors` names each bad field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Catalog:
    """What a rule may name: polled P2P markets, streamed spot symbols, the poll cadence."""

    markets: frozenset[str]
    symbols: frozenset[str]
    poll_seconds: int = 60

    @classmethod
    def of(cls, settings: Any) -> Catalog:
        return cls(frozenset(str(m) for m in settings.p2p_markets),
                   frozenset(settings.spot_symbols), settings.p2p_poll_seconds)


@dataclass
class Draft:
    """The columns of a valid rule, and the contact points it notifies (ids or URLs)."""

    columns: dict[str, Any]
    notify: list[int | str] = field(default_factory=list)


class _Checker:
    """Collects one error per bad field while reading a rule."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.errors: list[dict[str, str]] = []

    def fail(self, name: str, message: str) -> None:
        self.errors.append({"field": name, "message": message})

    def text(self, name: str, *, required: bool = False, limit: int = 100) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                self.fail(name, "is required")
            return None
        if not isinstance(value, str):
            self.fail(name, "must be a string")
            return None
        value = value.strip()
        if len(value) > limit:
            self.fail(name, f"must be at most {limit} characters")
        elif CONTROL.search(value):
            self.fail(name, "must not contain control characters")
        elif required and not value:
            self.fail(name, "is required")
        else:
            return value
        return None

    def number(self, name: str, value: Any = None, *, source: Mapping | None = None
               ) -> Decimal | None:
        raw = (source or self.data).get(name) if value is None else value
        if raw is None or raw == "":
            return None
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            self.fail(name, "must be a number")
            return None
        text = raw.strip() if isinstance(raw, str) else repr(raw)
        if len(text) > 40 or not DECIMAL.match(text):
            self.fail(name, "must be a decimal number like 1250.5 (at most 16 digits "
                            "before the point and 18 after)")
            return None
        return Decimal(text)

    def seconds(self, name: str, low: int, high: int, default: int | None) -> int | None:
        raw = self.data.get(name)
        if raw is None or raw == "":
            return default
        if isinstance(raw, bool) or not isinstance(raw, (int, str)) or (
                isinstance(raw, str) and not re.fullmatch(r"\d{1,9}", raw.strip())):
            self.fail(name, "must be a whole number of seconds")
            return default
        value = int(raw)
        if not low <= value <= high:
            self.fail(name, f"must be from {low} to {high} seconds")
            return default
        return value

    def choice(self, name: str, allowed: Sequence[str], default: str | None) -> str | None:
        raw = self.data.get(name)
        if raw is None or raw == "":
            return default
        if raw not in allowed:
            self.fail(name, f"must be one of {', '.join(allowed)}")
            return default
        return raw

    def flag(self, name: str, default: bool) -> bool:
        raw = self.data.get(name, default)
        if not isinstance(raw, bool):
            self.fail(name, "must be true or false")
            return default
        return raw


def parse_rule(data: Any, catalog: Catalog) -> Draft:
    """Check a rule's JSON against the catalog; the columns to store, or RuleInvalid."""
    if not isinstance(data, Mapping):
        raise RuleInvalid([{"field": "body", "message": "must be a JSON object"}])
    check = _Checker(data)
    for unknown in sorted(set(data) - FIELDS)[:5]:
        check.fail(str(unknown)[:40], "is not a rule field")
    columns: dict[str, Any] = {"name": check.text("name", required=True)}
    metric_name = check.choice("metric", sorted(METRICS), None)
    if metric_name is None and "metric" not in data:
        check.fail("metric", "is required")
    columns["metric"] = metric_name
    subject = _subject(check, metric_name, catalog) if metric_name else Subject()
    columns["subject"], columns["filters"] = subject, None
    columns.update(_condition(check, metric_name))
    columns.update(_evaluation(check, metric_name, catalog))
    columns["labels"] = _labels(check)
    columns["note"] = check.text("note", limit=MAX_NOTE)
    columns["enabled"] = check.flag("enabled", True)
    columns["muted_until"] = _time(check, "muted_until")
    notify = _notify(check)
    if check.errors:
        raise RuleInvalid(check.errors)
    return Draft(columns, notify)


def _subject(check: _Checker, metric_name: str, catalog: Catalog) -> Subject:
    metric = METRICS[metric_name]
    needs = metric.needs
    market = other = symbol = None
    window = None
    if "market" in needs:
        market = _market(check, "market", catalog, required=True)
    if "other" in needs:
        other = _other_market(check, market, catalog)
    if "symbol" in needs:
        symbol = _symbol(check, catalog, required=True)
    if "market|symbol" in needs:
        market = _market(check, "market", catalog, required=False)
        symbol = _symbol(check, catalog, required=False)
        if (market is None) == (symbol is None) and not check.errors:
            check.fail("market", "give either market (a P2P feed) or symbol (a spot feed)")
    if "window_seconds" in needs:
        window = check.seconds("window_seconds", 60, 30 * 86400, 86400)
    if metric_name == "p2p.premium_pct" and market:
        _premium_sources(check, market, catalog)
    filters = _filters(check, metric.filters)
    return Subject(market=market, other=other, symbol=symbol, window_seconds=window, **filters)


def _other_market(check: _Checker, market: str | None, catalog: Catalog) -> str | None:
    """The second market of a cross-exchange rule: another exchange, same asset and fiat."""
    other = _market(check, "other", catalog, required=True)
    if market and other:
        if market == other:
            check.fail("other", "must be another exchange's market than market")
        elif (market_of(market).asset, market_of(market).fiat) != (
                market_of(other).asset, market_of(other).fiat):
            check.fail("other", "must trade the same asset and fiat as market")
    return other


def _market(check: _Checker, name: str, catalog: Catalog, *, required: bool) -> str | None:
    raw = check.text(name, required=required, limit=60)
    if raw is None:
        return None
    match = re.fullmatch(r"(\w+):(\w+)/(\w+)", raw)
    key = f"{match[1].lower()}:{match[2].upper()}/{match[3].upper()}" if match else raw
    if key not in catalog.markets:
        polled = ", ".join(sorted(catalog.markets)) or "none (set P2P_MARKETS)"
        check.fail(name, f"{raw!r} is not a polled P2P market; polled: {polled}")
        return None
    return key


def _symbol(check: _Checker, catalog: Catalog, *, required: bool) -> str | None:
    raw = check.text("symbol", required=required, limit=20)
    if raw is None:
        return None
    if raw.upper() not in catalog.symbols:
        streamed = ", ".join(sorted(catalog.symbols)) or "none (set SPOT_SYMBOLS)"
        check.fail("symbol", f"{raw!r} is not a streamed spot symbol; streamed: {streamed}")
        return None
    return raw.upper()


def _premium_sources(check: _Checker, market: str, catalog: Catalog) -> None:
    if market_of(market).asset != "USDT":
        check.fail("market", "the premium is measured on a USDT market (e.g. binance:USDT/ARS)")
    elif btc_market(market) not in catalog.markets:
        check.fail("market", f"the premium needs {btc_market(market)} polled too")
    elif "BTCUSDT" not in catalog.symbols:
        check.fail("market", "the premium needs spot BTCUSDT in SPOT_SYMBOLS")


def _filters(check: _Checker, allowed: bool) -> dict[str, Any]:
    raw = check.data.get("filters")
    if raw in (None, {}):
        return {}
    if not allowed:
        check.fail("filters", "this metric takes no offer filters")
        return {}
    if not isinstance(raw, Mapping):
        check.fail("filters", "must be an object: amount, payment, merchant_only, "
                              "min_completion")
        return {}
    out: dict[str, Any] = {}
    for unknown in sorted(set(raw) - {"amount", "payment", "merchant_only",
                                      "min_completion"})[:5]:
        check.fail(f"filters.{str(unknown)[:40]}", "is not a filter")
    amount = check.number("filters.amount", raw.get("amount"))
    if amount is not None and not 0 < amount <= Decimal("1e15"):
        check.fail("filters.amount", "must be above 0")
    out["amount"] = amount
    completion = check.number("filters.min_completion", raw.get("min_completion"))
    if completion is not None and not 0 <= completion <= 1:
        check.fail("filters.min_completion", "must be from 0 to 1 (0.95 = 95 %)")
    out["min_completion"] = completion
    out["payment"] = _payment_codes(check, raw.get("payment"))
    merchant = raw.get("merchant_only", False)
    if not isinstance(merchant, bool):
        check.fail("filters.merchant_only", "must be true or false")
        merchant = False
    out["merchant_only"] = merchant
    return out


def _payment_codes(check: _Checker, raw: Any) -> tuple[str, ...]:
    if raw in (None, "", []):
        return ()
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or len(items) > 20 or not all(
            isinstance(item, str) and PAYMENT_CODE.match(item.strip()) for item in items):
        check.fail("filters.payment", "must be up to 20 canonical payment codes like "
                                      "mercadopago, bank_transfer")
        return ()
    return tuple(sorted({item.strip() for item in items}))


def _condition(check: _Checker, metric_name: str | None) -> dict[str, Any]:
    name = check.choice("condition", sorted(CONDITIONS), None)
    if name is None:
        if "condition" not in check.data:
            check.fail("condition", "is required")
        return {"condition": None}
    spec = CONDITIONS[name]
    out: dict[str, Any] = {"condition": name, "threshold": None, "low": None, "high": None,
                           "window_seconds": None, "direction": None}
    if spec.band:
        out.update(_band(check, name))
        return out
    threshold = check.number("threshold")
    if threshold is None and not any(e["field"] == "threshold" for e in check.errors):
        check.fail("threshold", "is required (a decimal number)")
    out["threshold"] = threshold
    if spec.window:
        if metric_name == "spot.change_pct":
            check.fail("condition", "spot.change_pct is already a change: use > or <")
        if threshold is not None and threshold <= 0:
            check.fail("threshold", "must be a positive % for change_pct")
        out["window_seconds"] = check.seconds("window_seconds", 60, 30 * 86400, 3600)
        out["direction"] = check.choice("direction", DIRECTIONS, "either")
    return out


def _band(check: _Checker, name: str) -> dict[str, Decimal | None]:
    low, high = check.number("low"), check.number("high")
    for key, value in (("low", low), ("high", high)):
        if value is None and not any(e["field"] == key for e in check.errors):
            check.fail(key, f"is required for the {name} condition")
    if low is not None and high is not None and low > high:
        check.fail("low", "must not be above high")
    return {"low": low, "high": high}


def _evaluation(check: _Checker, metric_name: str | None, catalog: Catalog) -> dict[str, Any]:
    for_seconds = check.seconds("for_seconds", 0, WEEK, 0) or 0
    metric = METRICS.get(metric_name or "")
    if metric is not None and metric.kind == "p2p" and 0 < for_seconds < catalog.poll_seconds:
        check.fail("for_seconds", f"is shorter than the P2P poll interval "
                                  f"({catalog.poll_seconds} s): it could never hold across two "
                                  "snapshots; use 0 or at least the interval")
    return {
        "for_seconds": for_seconds,
        "keep_firing_for_seconds": check.seconds("keep_firing_for_seconds", 0, WEEK, 0) or 0,
        "repeat_seconds": check.seconds("repeat_seconds", 60, 30 * 86400,
                                        DEFAULT_REPEAT_SECONDS),
        "nodata_seconds": check.seconds("nodata_seconds", 10, WEEK, None),
        "nodata_state": check.choice("nodata_state", NODATA_MODES, "nodata"),
        "error_state": check.choice("error_state", ERROR_MODES, "error"),
    }


def _labels(check: _Checker) -> dict[str, str]:
    raw = check.data.get("labels")
    if raw in (None, {}):
        return {}
    if not isinstance(raw, Mapping) or len(raw) > MAX_LABELS:
        check.fail("labels", f"must be an object of up to {MAX_LABELS} text labels")
        return {}
    out = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key) or key in RESERVED_LABELS:
            check.fail("labels", f"{str(key)[:40]!r} is not a free label name (letters, "
                                 "digits, _; not a name p2pdash sets itself)")
        elif not isinstance(value, str) or len(value) > 200 or CONTROL.search(value):
            check.fail(f"labels.{key}", "must be text of at most 200 characters")
        elif key == "severity" and value not in SEVERITIES:
            check.fail("labels.severity", f"must be one of {', '.join(SEVERITIES)}")
        else:
            out[key] = value
    return out


def _time(check: _Checker, name: str) -> datetime | None:
    raw = check.data.get(name)
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) > 40:
        check.fail(name, "must be an ISO 8601 time")
        return None
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        check.fail(name, "must be an ISO 8601 time like 2026-12-01T18:00:00Z")
        return None
    if not 2000 <= moment.year <= 2999:
        check.fail(name, "must be a time between the years 2000 and 2999")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _notify(check: _Checker) -> list[int | str]:
    raw = check.data.get("notify")
    if raw in (None, []):
        return []
    if not isinstance(raw, list) or len(raw) > 10:
        check.fail("notify", "must be a list of up to 10 contact point ids or Apprise URLs")
        return []
    out: list[int | str] = []
    for item in raw:
        if isinstance(item, int) and not isinstance(item, bool) and 0 < item < 2**31:
            out.append(item)
        elif isinstance(item, str) and 0 < len(item) <= 2000 and not CONTROL.search(item):
            out.append(item.strip())
        else:
            check.fail("notify", "each item is a contact point id or an Apprise URL")
            return []
    return out
