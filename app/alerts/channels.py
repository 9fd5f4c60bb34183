"""Contact point kinds: how each is checked when saved and how a notification is sent.

The registry CHANNELS maps a kind to a Channel; adding a kind is one class. Kinds:
- webhook: an http(s) URL that gets the Alertmanager webhook JSON (app/alerts/payload.py),
  signed with HMAC-SHA256 of the body in X-P2pdash-Signature when a secret is set;
- apprise: any Apprise URL (tgram://, mailto://, slack://, ntfy://, json://, ...);
- email: an address, sent through the SMTP server of ALERTS_SMTP_URL (by Apprise).
Webhook hosts (and the hosts of Apprise's own http kinds) can be limited to an allow-list
(ALERTS_WEBHOOK_ALLOWED_HOSTS): the SSRF guard, checked on save and again on every send.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import apprise
import requests

EMAIL = re.compile(r"^[^@\s,;]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
MAX_URL = 2000
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
HTTP_APPRISE = {"json", "jsons", "xml", "xmls", "form", "forms"}
SIGNATURE_HEADER = "X-P2pdash-Signature"
MAX_RESPONSE = 500


class ContactInvalid(ValueError):
    """A contact point that cannot be saved or sent to; `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Policy:
    """Where notifications may go and how long a send may take."""

    allowed_hosts: tuple[str, ...] = ()
    smtp_url: str | None = None
    smtp_from: str = "p2pdash@localhost"
    timeout_seconds: float = 10.0
    check_reachable: bool = True


@dataclass(frozen=True)
class Delivery:
    """The answer to one attempt: ok, the HTTP status when there is one, a short text,
    how long to wait before retrying (Retry-After), and whether retrying is pointless."""

    ok: bool
    status_code: int | None = None
    response: str = ""
    retry_after: float | None = None
    permanent: bool = False
    duration_ms: int = 0

    @property
    def error(self) -> str | None:
        """What went wrong, for the delivery log and the contact point (None when ok)."""
        if self.ok:
            return None
        status = f"HTTP {self.status_code}" if self.status_code else ""
        return ": ".join(part for part in (status, self.response) if part) or "failed"


@dataclass(frozen=True)
class Message:
    """A notification: the Alertmanager body, a title and text for chat and e-mail, and
    the key that makes it unique (sent as Idempotency-Key)."""

    payload: dict[str, Any]
    title: str
    body: str
    idempotency_key: str


def _field(fields: Mapping[str, Any], name: str) -> str:
    """A text field of a contact point, stripped; anything but text counts as empty."""
    value = fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether `host` matches the allow-list (empty: every host; '*.corp' patterns)."""
    host = host.lower().rstrip(".")
    return not allowed or any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in allowed)


def _http_target(url: str, field: str, policy: Policy) -> tuple[str, int]:
    if len(url) > MAX_URL or CONTROL.search(url):
        raise ContactInvalid(field, f"must be a URL of at most {MAX_URL} characters, "
                                    "without control characters")
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        raise ContactInvalid(field, "is not a URL (or its port is not a number from 1 to "
                                    "65535)") from None
    if scheme not in ("http", "https") or not host:
        raise ContactInvalid(field, "must be an http:// or https:// URL")
    if port == 0:
        raise ContactInvalid(field, "has a port that is not a number from 1 to 65535")
    port = port or (443 if scheme == "https" else 80)
    if not host_allowed(parts.hostname, policy.allowed_hosts):
        raise ContactInvalid(field, f"host {parts.hostname!r} is not in the webhook "
                                    "allow-list (ALERTS_WEBHOOK_ALLOWED_HOSTS)")
    return parts.hostname, port


def reachable(host: str, port: int, field: str, timeout: float = 3.0) -> None:
    """Refuse a host that does not accept a TCP connection."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or error.__class__.__name__
        raise ContactInvalid(field, f"{host}:{port} is unreachable ({reason})") from None


def redact(url: str) -> str:
    """The URL as it may be shown again: scheme and host, the rest masked."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    tail = "/…" if (parts.path.strip("/") or parts.query) else ""
    return f"{parts.scheme}://{host}{port}{tail}"


def _without_url(text: str, url: str) -> str:
    """An error text with the URL's path and query (where tokens live) masked."""
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    for secret in sorted({url, tail, parts.query} - {"", "/"}, key=len, reverse=True):
        text = text.replace(secret, "…")
    return _excerpt(re.sub(r"(url: )\S+", r"\1…", text))


def _excerpt(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)[:MAX_RESPONSE]


class Webhook:
    """An Alertmanager-format JSON POST to an http(s) URL, optionally HMAC-signed."""

    kind = "webhook"
    label = "Webhook (Alertmanager JSON)"

    def check(self, fields: Mapping[str, Any], policy: Policy) -> tuple[str, dict[str, Any]]:
        url = _field(fields, "url")
        host, port = _http_target(url, "url", policy)
        if policy.check_reachable:
            reachable(host, port, "url")
        secret = fields.get("secret")  # kept as typed: it is an HMAC key
        return redact(url), {"url": url, "secret": secret if isinstance(secret, str) else ""}

    def send(self, secret: Mapping[str, Any], message: Message, policy: Policy) -> Delivery:
        url = secret["url"]
        _http_target(url, "url", policy)  # the allow-list may have changed since saving
        body = json.dumps(message.payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "p2pdash-alerts",
                   "Idempotency-Key": message.idempotency_key}
        if secret.get("secret"):
            digest = hmac.new(secret["secret"].encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        started = time.monotonic()
        try:
            answer = _session().post(url, data=body, headers=headers,
                                     timeout=policy.timeout_seconds, allow_redirects=False)
        except requests.RequestException as error:
            return Delivery(False, None, _without_url(f"{error.__class__.__name__}: {error}",
                                                      url), duration_ms=_ms(started))
        return _http_delivery(answer, started)


_local = threading.local()


def _session() -> requests.Session:
    """This thread's HTTP session: a sender reuses its connections (keep-alive)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False  # never route notifications through a proxy from the env
    return session


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit() and len(value.strip()) <= 6:
        return float(value.strip())
    return None


def _http_delivery(answer: requests.Response, started: float) -> Delivery:
    code = answer.status_code
    text = _excerpt(answer.text or "")
    if 200 <= code < 300:
        return Delivery(True, code, text, duration_ms=_ms(started))
    retryable = code == 429 or code >= 500 or code == 408
    return Delivery(False, code, text, _retry_after(answer.headers.get("Retry-After")),
                    permanent=not retryable, duration_ms=_ms(started))


class AppriseChannel:
    """Any Apprise URL: Telegram, Slack, Discord, ntfy, Matrix, Pushover, e-mail, JSON..."""

    kind = "apprise"
    label = "Apprise URL (Telegram, Slack, Discord, ntfy, ...)"

    def check(self, fields: Mapping[str, Any], policy: Policy) -> tuple[str, dict[str, Any]]:
        url = _field(fields, "url")
        if not url or len(url) > MAX_URL or CONTROL.search(url):
            raise ContactInvalid("url", "is required (an Apprise URL such as tgram://TOKEN/CHAT, "
                                        f"at most {MAX_URL} characters)")
        if apprise.Apprise.instantiate(url) is None:
            raise ContactInvalid("url", "is not an Apprise URL that Apprise can use")
        try:
            parts = urlsplit(url)
            scheme, port = parts.scheme.lower(), parts.port
        except ValueError:
            raise ContactInvalid("url", "is not a URL") from None
        if scheme in HTTP_APPRISE:
            if not parts.hostname or not host_allowed(parts.hostname, policy.allowed_hosts):
                raise ContactInvalid("url", f"host {parts.hostname!r} is not in the webhook "
                                            "allow-list (ALERTS_WEBHOOK_ALLOWED_HOSTS)")
            if policy.check_reachable:
                secure = scheme.endswith("s")
                reachable(parts.hostname, port or (443 if secure else 80), "url")
        return redact(url), {"url": url}

    def send(self, secret: Mapping[str, Any], message: Message, policy: Policy) -> Delivery:
        return _apprise_send(secret["url"], message, policy)


def _apprise_send(url: str, message: Message, policy: Policy) -> Delivery:
    scheme = urlsplit(url).scheme.lower()
    if scheme in HTTP_APPRISE:
        host = urlsplit(url).hostname or ""
        if not host_allowed(host, policy.allowed_hosts):
            return Delivery(False, None, f"host {host!r} is not in the allow-list",
                            permanent=True)
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return Delivery(False, None, "Apprise does not accept this URL", permanent=True)
    started = time.monotonic()
    ok = notifier.notify(title=message.title, body=message.body)
    return Delivery(bool(ok), None, "delivered" if ok else "Apprise reported a failure "
                    "(see the log for its reason)", duration_ms=_ms(started))


class Email:
    """An e-mail address, sent through ALERTS_SMTP_URL by Apprise's mailto plugin."""

    kind = "email"
    label = "E-mail"

    def check(self, fields: Mapping[str, Any], policy: Policy) -> tuple[str, dict[str, Any]]:
        to = _field(fields, "to")
        if not EMAIL.match(to):
            raise ContactInvalid("to", "must be an e-mail address")
        if not policy.smtp_url:
            raise ContactInvalid("to", "no SMTP server is set (ALERTS_SMTP_URL)")
        if policy.check_reachable:
            parts = urlsplit(policy.smtp_url)
            reachable(parts.hostname or "", parts.port or 25, "to")
        return to, {"to": to}

    def send(self, secret: Mapping[str, Any], message: Message, policy: Policy) -> Delivery:
        if not policy.smtp_url:
            return Delivery(False, None, "no SMTP server is set (ALERTS_SMTP_URL)",
                            permanent=True)
        return _apprise_send(mailto_url(policy.smtp_url, policy.smtp_from, secret["to"]),
                             message, policy)


def mailto_url(smtp_url: str, sender: str, to: str) -> str:
    """The Apprise mailto URL for an SMTP server URL (smtp:// plain or STARTTLS on
    demand, smtps:// TLS), a sender and a recipient."""
    parts = urlsplit(smtp_url)
    secure = parts.scheme == "smtps"
    user = quote(parts.username or sender.split("@", maxsplit=1)[0], safe="")
    password = f":{quote(parts.password, safe='')}" if parts.password else ""
    host = parts.hostname or "localhost"
    port = parts.port or (465 if secure else 25)
    mode = "ssl" if secure else "insecure"
    query = (f"smtp={host}&from={quote(sender, safe='@')}&to={quote(to, safe='@')}"
             f"&mode={mode}")
    domain = sender.rsplit("@", maxsplit=1)[-1] if "@" in sender else host
    return f"{'mailtos' if secure else 'mailto'}://{user}{password}@{domain}:{port}?{query}"


CHANNELS: dict[str, Any] = {channel.kind: channel
                            for channel in (Webhook(), AppriseChannel(), Email())}
