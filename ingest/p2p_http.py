"""HTTP for the P2P pollers: pacing per exchange, retries with backoff, named refusals.

429, 5xx, timeouts and dropped connections are retried with exponential backoff (a
Retry-After header wins); a captcha or WAF challenge, 403 and 451 (geo-block) are not worth
retrying and raise at once, so the run fails with an error that names the cause. The client
notes when the last answer arrived (`answered_at`): a snapshot is stamped with the moment
its book was read, not when a request that hung for seconds was sent.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from time import monotonic, sleep
from typing import Any

import requests

from app.config import Settings

log = logging.getLogger(__name__)

USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0 Safari/537.36 p2pdash/0.1")
RETRY_AFTER_CAP = 60.0
ENDPOINT_SETTING = {"binance": "BINANCE_P2P_URL", "okx": "OKX_P2P_URL", "bybit": "BYBIT_P2P_URL"}


class P2PFetchError(RuntimeError):
    """A P2P book could not be read; the run fails with this message."""


class ExchangeUnavailable(P2PFetchError):
    """Still 429, 5xx or no answer after every retry."""


class ExchangeBlocked(P2PFetchError):
    """The exchange (or its CDN) refuses us: HTTP 403."""


class GeoBlocked(ExchangeBlocked):
    """The exchange refuses this location: HTTP 451."""


class CaptchaRequired(ExchangeBlocked):
    """The exchange answered with a captcha or a bot challenge instead of data."""


class ExchangeError(P2PFetchError):
    """The exchange answered, but not with a usable book (an API error or a bad shape)."""


@dataclass(frozen=True)
class HttpPolicy:
    """How one exchange is called: timeout, retries, first backoff and pacing, in seconds."""

    timeout: float
    retries: int
    backoff: float
    pacing: float

    @classmethod
    def from_settings(cls, settings: Settings, exchange: str) -> HttpPolicy:
        return cls(timeout=settings.p2p_timeout_ms / 1000, retries=settings.p2p_retries,
                   backoff=settings.p2p_backoff_ms / 1000,
                   pacing=settings.p2p_pacing_ms.get(exchange, 0) / 1000)


class Pacer:
    """Space requests to one exchange at least `interval` seconds apart, across threads."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Sleep until this caller's turn."""
        if self.interval <= 0:
            return
        with self._lock:
            now = monotonic()
            turn = max(now, self._next)
            self._next = turn + self.interval
        if turn > now:
            sleep(turn - now)


_pacers: dict[tuple[str, float], Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(exchange: str, interval: float) -> Pacer:
    """The process-wide pacer of an exchange (every poller of it shares one)."""
    with _pacers_lock:
        return _pacers.setdefault((exchange, interval), Pacer(interval))


def captcha_in(response: requests.Response) -> bool:
    """Whether the answer is a captcha or bot challenge (AWS WAF, Cloudflare, or a page)."""
    if response.headers.get("x-amzn-waf-action", "").lower() in ("captcha", "challenge"):
        return True
    if response.headers.get("cf-mitigated", "").lower() == "challenge":
        return True
    if "json" in response.headers.get("content-type", ""):
        return False
    return "captcha" in response.text[:5000].lower()


class ExchangeClient:
    """JSON over HTTP to one exchange's P2P endpoints, paced and retried."""

    def __init__(self, exchange: str, base_url: str, policy: HttpPolicy) -> None:
        self.exchange = exchange
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.pacer = pacer_for(exchange, policy.pacing)
        self.answered_at: datetime | None = None  # when the last answer arrived
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json",
                                     "Accept-Language": "en-US,en;q=0.9"})

    @classmethod
    def for_settings(cls, settings: Settings, exchange: str) -> ExchangeClient:
        base_url = settings.endpoints[ENDPOINT_SETTING[exchange]]
        return cls(exchange, base_url, HttpPolicy.from_settings(settings, exchange))

    def __enter__(self) -> ExchangeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.session.close()

    def get_json(self, path: str, params: Mapping[str, str],
                 headers: Mapping[str, str] | None = None) -> Any:
        """GET `path` with query `params`; return the decoded JSON (numbers as Decimal)."""
        return self._call("GET", path, params=params, headers=headers)

    def post_json(self, path: str, body: Mapping[str, Any],
                  headers: Mapping[str, str] | None = None) -> Any:
        """POST `body` as JSON to `path`; return the decoded JSON (numbers as Decimal)."""
        return self._call("POST", path, json=body, headers=headers)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self.base_url + path
        for attempt in range(self.policy.retries + 1):
            last = attempt == self.policy.retries
            self.pacer.wait()
            try:
                response = self.session.request(method, url, timeout=self.policy.timeout,
                                                **kwargs)
                self.answered_at = datetime.now(UTC)  # the body is read by now
            except (requests.Timeout, requests.ConnectionError) as error:
                reason = f"no answer ({error.__class__.__name__})"
                if last:
                    raise ExchangeUnavailable(self._gave_up(reason)) from None
                self._pause(attempt, reason, None)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                reason = f"HTTP {response.status_code}"
                if last:
                    raise ExchangeUnavailable(self._gave_up(reason))
                self._pause(attempt, reason, response.headers.get("Retry-After"))
                continue
            return self._decode(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _gave_up(self, reason: str) -> str:
        tries = self.policy.retries + 1
        return f"{self.exchange} P2P: {reason} after {tries} attempt{'s' * (tries > 1)}"

    def _pause(self, attempt: int, reason: str, retry_after: str | None) -> None:
        delay = self.policy.backoff * 2 ** attempt
        if retry_after is not None and retry_after.strip().isdigit():
            delay = min(float(retry_after), RETRY_AFTER_CAP)
        log.warning("P2P request retried", extra={"exchange": self.exchange, "reason": reason,
                                                  "attempt": attempt + 1, "delay_s": delay})
        sleep(delay)

    def _decode(self, response: requests.Response) -> Any:
        status = response.status_code
        name = f"{self.exchange} P2P"
        if captcha_in(response):
            raise CaptchaRequired(f"{name}: HTTP {status} answered with a captcha or bot "
                                  "challenge instead of data (automated access refused)")
        if status == 451:
            raise GeoBlocked(f"{name}: HTTP 451 Unavailable For Legal Reasons: the exchange "
                             "refuses requests from this location (geo-block)")
        if status == 403:
            raise ExchangeBlocked(f"{name}: HTTP 403 Forbidden: access refused by the "
                                  "exchange or its CDN (IP or region blocked)")
        if status != 200:
            raise ExchangeError(f"{name}: HTTP {status}: {response.text[:200]!r}")
        try:
            return json.loads(response.text, parse_float=Decimal)
        except ValueError:
            raise ExchangeError(f"{name}: answer is not JSON: {response.text[:200]!r}") from None


def check_envelope(exchange: str, ok: bool, code: Any, message: Any) -> None:
    """Raise for an exchange-level error inside a 200 answer (captcha named as such)."""
    if ok:
        return
    text = f"{exchange} P2P: the exchange answered code {code!r}: {message!r}"
    if "captcha" in str(message).lower():
        raise CaptchaRequired(text)
    raise ExchangeError(text)
