"""Contact point kinds against real servers on loopback: SMTP (aiosmtpd), Apprise's own
json:// to a receiver, webhooks with the host allow-list; secrets sealed at rest."""

from __future__ import annotations

import email
from dataclasses import replace

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from app.alerts import channels, service
from app.alerts.secrets import seal
from db import alerts as store
from db.embedded import free_port
from ingest.alerts import AlertEngine, Sender
from tests.alerts.conftest import simple_book
from tests.test_secrets_at_rest import _pg_dump

MARKET = "binance:USDT/ARS"


class Inbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.Message]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def engine(app):
    return app.extensions["p2pdash"].engine


def firing(engine, settings, actor, contact_id, clock) -> None:
    service.create_rule(engine, settings, actor, {
        "name": "ask under 1000", "metric": "p2p.best_ask", "market": MARKET,
        "condition": "<", "threshold": "1000", "notify": [contact_id]})
    simple_book(engine, MARKET, clock.now, "990.5", "980")
    AlertEngine(settings, engine, clock=clock).evaluate_all()
    assert Sender(settings, engine, clock=clock).send_due() == 1


def test_email_goes_through_the_smtp_server(engine, settings, smtp, clock):
    controller, inbox = smtp
    settings = replace(settings, alerts=replace(
        settings.alerts, smtp_url=f"smtp://127.0.0.1:{controller.port}",
        smtp_from="alerts@desk.example"))
    actor = service.Actor(*_user(engine))
    point = service.create_contact(engine, settings, actor, {
        "name": "desk mail", "kind": "email", "to": "desk@desk.example"})
    firing(engine, settings, actor, point["id"], clock)
    (_sender, recipients, message), = inbox.messages
    assert recipients == ["desk@desk.example"]
    assert "ask under 1000" in message["Subject"] and "FIRING" in message["Subject"]
    body = message.get_payload(decode=True) if not message.is_multipart() else \
        message.get_payload(0).get_payload(decode=True)
    assert b"990.5" in body


def _user(engine) -> tuple[int, str, str]:
    with engine.begin() as connection:
        user_id = connection.scalar(text(
            "INSERT INTO users (username, password_hash, role) "
            "VALUES ('mailer', 'x', 'trader') RETURNING id"))
    return user_id, "mailer", "trader"


def test_an_apprise_json_url_posts_to_its_receiver(engine, settings, receiver, clock):
    actor = service.Actor(*_user(engine))
    url = receiver.url.replace("http://", "json://")
    point = service.create_contact(engine, settings, actor, {
        "name": "apprise json", "kind": "apprise", "url": url})
    firing(engine, settings, actor, point["id"], clock)
    body = receiver.wait_for(1)[0].json
    assert body["title"] == "[FIRING] ask under 1000"
    assert "990.5" in body["message"]


def test_an_email_needs_an_smtp_server_and_a_reachable_one(engine, settings):
    actor = service.Actor(*_user(engine))
    with pytest.raises(service.AlertError) as raised:
        service.create_contact(engine, settings, actor, {"name": "m", "kind": "email",
                                                         "to": "a@b.example"})
    assert raised.value.errors[0]["field"] == "to"
    unreachable = replace(settings, alerts=replace(
        settings.alerts, smtp_url=f"smtp://127.0.0.1:{free_port()}"))
    with pytest.raises(service.AlertError) as raised:
        service.create_contact(engine, unreachable, actor, {"name": "m", "kind": "email",
                                                            "to": "a@b.example"})
    assert "unreachable" in raised.value.errors[0]["message"]


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"kind": "webhook", "url": "ftp://127.0.0.1/x"}, "url", "http:// or https://"),
    ({"kind": "webhook", "url": "file:///etc/passwd"}, "url", "http:// or https://"),
    ({"kind": "webhook", "url": "http://127.0.0.1:99999/x"}, "url", "port"),
    ({"kind": "apprise", "url": "nonsense://"}, "url", "Apprise"),
    ({"kind": "pager", "url": "http://x"}, "kind", "one of"),
    ({"kind": "email", "to": "not an address"}, "to", "e-mail address"),
])
def test_bad_contact_points_are_refused_naming_the_field(engine, settings, data, field, words):
    actor = service.Actor(*_user(engine))
    with pytest.raises(service.AlertError) as raised:
        service.create_contact(engine, settings, actor, {"name": "x", **data})
    assert raised.value.status == 422
    assert raised.value.errors[0]["field"] == field
    assert words in raised.value.errors[0]["message"]
    assert service.visible_contacts(engine, actor) == []


def test_unreachable_webhooks_are_refused_on_save(engine, settings):
    actor = service.Actor(*_user(engine))
    with pytest.raises(service.AlertError) as raised:
        service.create_contact(engine, settings, actor, {
            "name": "x", "kind": "webhook", "url": f"http://127.0.0.1:{free_port()}/hook"})
    assert "unreachable" in raised.value.errors[0]["message"]


def test_the_allow_list_guards_webhook_hosts_on_save_and_on_send(engine, settings, receiver,
                                                                 clock):
    actor = service.Actor(*_user(engine))
    strict = replace(settings, alerts=replace(settings.alerts,
                                              allowed_hosts=("hooks.desk.example",)))
    for kind, url in (("webhook", receiver.url),
                      ("apprise", receiver.url.replace("http://", "json://"))):
        with pytest.raises(service.AlertError) as raised:
            service.create_contact(engine, strict, actor, {"name": kind, "kind": kind,
                                                           "url": url})
        assert "allow-list" in raised.value.errors[0]["message"]
    point = service.create_contact(engine, settings, actor, {"name": "ok", "kind": "webhook",
                                                             "url": receiver.url})
    firing(engine, strict, actor, point["id"], clock)  # the list changed after saving
    assert receiver.requests == []
    assert service.visible_contacts(engine, actor)[0]["failing"] is True


def test_patterns_in_the_allow_list():
    assert channels.host_allowed("hooks.corp.example", ("*.corp.example",))
    assert not channels.host_allowed("corp.example.evil", ("*.corp.example",))
    assert channels.host_allowed("anything", ())


def test_contact_point_secrets_are_sealed_at_rest_and_never_shown(
        engine, settings, receiver, pg_cluster, database_url):
    actor = service.Actor(*_user(engine))
    url = receiver.url + "/T0KEN-in-the-path?api_key=K3Y-in-query"
    point = service.create_contact(engine, settings, actor, {
        "name": "signed", "kind": "webhook", "url": url, "secret": "hmac-s3cr3t-value"})
    assert point["target"] == receiver.url.rsplit("/", 1)[0] + "/…"
    shown = repr(service.visible_contacts(engine, actor))
    dump = _pg_dump(pg_cluster, database_url)
    for secret in ("T0KEN-in-the-path", "K3Y-in-query", "hmac-s3cr3t-value"):
        assert secret not in shown and secret not in dump


def test_a_secret_sealed_under_another_key_fails_with_a_clear_message(engine, settings,
                                                                      clock):
    actor = service.Actor(*_user(engine))
    with engine.begin() as connection:
        contact_id = connection.scalar(text(
            "INSERT INTO contact_points (user_id, name, kind, target, secret) "
            "VALUES (:u, 'old', 'webhook', 'http://x/…', :s) RETURNING id"),
            {"u": actor.user_id, "s": seal("another-secret-key-" + "y" * 32,
                                           {"url": "http://127.0.0.1:1/x"})})
    result = service.send_test_contact(engine, settings, actor, contact_id)
    assert not result.ok and "another SECRET_KEY" in result.response


@pytest.mark.parametrize("url", ["http://[::1", "http://" + "a" * 70 + ".example/x",
                                 "http://127.0.0.1:0/x", "http://127.0.0.1/x\x00y",
                                 "http://127.0.0.1/" + "x" * 2100])
def test_broken_urls_are_a_field_error_not_a_crash(engine, settings, url):
    actor = service.Actor(*_user(engine))
    with pytest.raises(service.AlertError) as raised:
        service.create_contact(engine, settings, actor, {"name": "x", "kind": "webhook",
                                                         "url": url})
    assert raised.value.errors[0]["field"] == "url"


def test_a_failed_send_never_keeps_the_url_token(engine, settings, receiver, clock):
    actor = service.Actor(*_user(engine))
    point = service.create_contact(engine, settings, actor, {
        "name": "hook", "kind": "webhook", "url": receiver.url + "/T0KEN?key=K3Y"})
    with engine.begin() as connection:  # the receiver moves away: connections are refused
        moved = f"http://127.0.0.1:{free_port()}/T0KEN?key=K3Y"
        sealed = seal(settings.secret_key, {"url": moved, "secret": ""})
        connection.execute(text("UPDATE contact_points SET secret = :s WHERE id = :i"),
                           {"s": sealed, "i": point["id"]})
    result = service.send_test_contact(engine, settings, actor, point["id"])
    assert not result.ok
    stored = repr(service.visible_contacts(engine, actor)) + repr(store.deliveries(engine))
    for secret in ("T0KEN", "K3Y"):
        assert secret not in result.response and secret not in stored


def test_a_rule_refused_for_one_notify_item_stores_no_contact_point(engine, settings,
                                                                    receiver):
    actor = service.Actor(*_user(engine))
    with pytest.raises(service.AlertError) as raised:
        service.create_rule(engine, settings, actor, {
            "name": "r", "metric": "p2p.best_ask", "market": MARKET, "condition": "<",
            "threshold": "1", "notify": [receiver.url, 999999]})
    assert raised.value.errors[0]["field"] == "notify"
    assert service.visible_contacts(engine, actor) == []
