"""The evaluator on a real database: states, transitions, notifications to a real receiver."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from app.alerts import service
from db import alerts as store
from db.p2p import summary
from db.p2p_query import OfferFilter
from ingest.alerts import AlertEngine, Sender
from tests.alerts.conftest import actor_for, offer, simple_book, store_book

MARKET = "binance:USDT/ARS"


@pytest.fixture
def engine(app):
    return app.extensions["p2pdash"].engine


@pytest.fixture
def trader(app):
    return actor_for(app, "trader")


def webhook(engine, settings, actor, receiver, **extra) -> int:
    point = service.create_contact(engine, settings, actor, {
        "name": extra.pop("name", "desk hook"), "kind": "webhook", "url": receiver.url,
        **extra})
    return point["id"]


def make_rule(engine, settings, actor, **fields) -> int:
    data = {"name": "ask under 1000", "metric": "p2p.best_ask", "market": MARKET,
            "condition": "<", "threshold": "1000", **fields}
    return service.create_rule(engine, settings, actor, data).rule.id


def evaluator(settings, engine, clock) -> tuple[AlertEngine, Sender]:
    return AlertEngine(settings, engine, clock=clock), Sender(settings, engine, clock=clock)


def states(engine, rule_id) -> list[tuple[str, str]]:
    return [(e["from_state"], e["to_state"]) for e in
            reversed(store.events(engine, rule_id=rule_id))]


def test_a_best_ask_below_the_threshold_fires_once_with_its_value_then_resolves(
        engine, settings, trader, receiver, clock):
    rule_id = make_rule(engine, settings, trader, notify=[webhook(engine, settings, trader,
                                                                  receiver)])
    alerts, sender = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "1010.25", "990")
    alerts.evaluate_all()
    assert sender.send_due() == 0
    clock.advance(60)
    run_id = simple_book(engine, MARKET, clock.now, "995.50", "990")
    alerts.evaluate_markets([MARKET])
    alerts.evaluate_markets([MARKET])  # the same snapshot again: nothing new
    assert sender.send_due() == 1
    clock.advance(60)
    simple_book(engine, MARKET, clock.now, "1002", "990")
    alerts.evaluate_markets([MARKET])
    assert sender.send_due() == 1

    (firing, first), (resolved, second) = receiver.alerts()
    assert (firing, resolved) == ("firing", "resolved")
    assert first["annotations"]["value"] == "995.50"
    assert first["annotations"]["threshold"] == "1000"
    assert first["annotations"]["run_id"] == str(run_id)
    assert first["labels"]["alertname"] == "ask under 1000"
    assert first["labels"]["metric"] == "p2p.best_ask"
    assert first["labels"]["market"] == MARKET
    assert first["fingerprint"] == second["fingerprint"]
    assert first["startsAt"] == second["startsAt"]
    assert second["endsAt"] != "0001-01-01T00:00:00Z"
    assert "/depth?market=binance%3AUSDT%2FARS&at=" in first["generatorURL"]
    body = receiver.requests[0].json
    assert body["version"] == "4" and body["receiver"].startswith("contact-")
    assert body["groupLabels"] == {"alertname": "ask under 1000"}
    assert receiver.requests[0].headers["Idempotency-Key"].endswith(":firing:c1")
    assert states(engine, rule_id) == [("normal", "firing"), ("firing", "normal")]
    events = store.events(engine, rule_id=rule_id)
    assert events[-1]["value"] == Decimal("995.50") and events[-1]["run_id"] == run_id


def test_for_keeps_a_rule_pending_until_the_condition_held_long_enough(
        engine, settings, trader, clock):
    rule_id = make_rule(engine, settings, trader, for_seconds=120)
    alerts, _ = evaluator(settings, engine, clock)
    for price, expected in (("990", "pending"), ("991", "pending"), ("992", "firing")):
        simple_book(engine, MARKET, clock.now, price, "980")
        alerts.evaluate_all()
        assert alerts.states[rule_id].state == expected
        clock.advance(60)
    simple_book(engine, MARKET, clock.now, "1001", "980")
    alerts.evaluate_all()
    assert states(engine, rule_id) == [("normal", "pending"), ("pending", "firing"),
                                       ("firing", "normal")]


def test_keep_firing_for_recovers_before_resolving(engine, settings, trader, clock):
    rule_id = make_rule(engine, settings, trader, keep_firing_for_seconds=120)
    alerts, _ = evaluator(settings, engine, clock)
    for price in ("990", "1005", "995", "1005", "1006", "1007"):
        simple_book(engine, MARKET, clock.now, price, "980")
        alerts.evaluate_all()
        clock.advance(60)
    assert states(engine, rule_id) == [
        ("normal", "firing"), ("firing", "recovering"), ("recovering", "firing"),
        ("firing", "recovering"), ("recovering", "normal")]


def test_stale_data_is_nodata_and_each_rule_chooses_what_nodata_means(
        engine, settings, trader, clock, receiver):
    hook = webhook(engine, settings, trader, receiver)
    nodata = make_rule(engine, settings, trader, name="nodata", nodata_seconds=120,
                       notify=[hook])
    keep = make_rule(engine, settings, trader, name="keep", nodata_seconds=120,
                     nodata_state="keep_last")
    alerting = make_rule(engine, settings, trader, name="alerting", nodata_seconds=120,
                         threshold="900", nodata_state="alerting")
    alerts, sender = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "990", "980")
    alerts.evaluate_all()
    clock.advance(200)
    alerts.tick()
    assert alerts.states[nodata].state == "nodata"
    assert alerts.states[keep].state == "firing"
    assert alerts.states[alerting].state == "firing"
    sender.send_due()
    kinds = [(status, entry["annotations"]["state"]) for status, entry in receiver.alerts()]
    assert kinds == [("firing", "Firing"), ("firing", "NoData")]
    clock.advance(10)
    simple_book(engine, MARKET, clock.now, "1100", "980")
    alerts.evaluate_markets([MARKET])
    assert alerts.states[nodata].state == "normal"


def test_a_rule_that_flaps_inside_the_group_wait_sends_nothing_and_shows_the_flap(
        engine, settings, trader, receiver, clock):
    settings = replace(settings, alerts=replace(settings.alerts, group_wait_seconds=30))
    rule_id = make_rule(engine, settings, trader, notify=[webhook(engine, settings, trader,
                                                                  receiver)])
    alerts, sender = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "990", "980")
    alerts.evaluate_all()
    clock.advance(10)
    assert sender.send_due() == 0  # still inside the group wait
    simple_book(engine, MARKET, clock.now, "1005", "980")
    alerts.evaluate_markets([MARKET])
    clock.advance(60)
    assert sender.send_due() == 0
    assert receiver.requests == []
    assert states(engine, rule_id) == [("normal", "firing"), ("firing", "normal")]
    log = store.deliveries(engine, rule_id=rule_id)
    assert [(row["kind"], row["status"]) for row in log] == [("firing", "cancelled")]


def test_a_firing_that_outlives_the_group_wait_is_sent_then_resolved(
        engine, settings, trader, receiver, clock):
    settings = replace(settings, alerts=replace(settings.alerts, group_wait_seconds=30))
    make_rule(engine, settings, trader, notify=[webhook(engine, settings, trader, receiver)])
    alerts, sender = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "990", "980")
    alerts.evaluate_all()
    clock.advance(31)
    assert sender.send_due() == 1
    simple_book(engine, MARKET, clock.now, "1005", "980")
    alerts.evaluate_markets([MARKET])
    sender.send_due()
    assert [status for status, _ in receiver.alerts()] == ["firing", "resolved"]


def test_a_crossing_between_two_evaluations_is_caught(engine, settings, trader, clock):
    rule_id = make_rule(engine, settings, trader, condition="crosses_above", threshold="1000")
    alerts, _ = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "1010", "980")  # already above: no crossing
    alerts.evaluate_all()
    assert alerts.states[rule_id].state == "normal"
    for price, expected in (("995", "normal"), ("1003.5", "firing"), ("1004", "firing"),
                            ("999", "normal")):
        clock.advance(60)
        simple_book(engine, MARKET, clock.now, price, "980")
        alerts.evaluate_markets([MARKET])
        assert alerts.states[rule_id].state == expected, price


def test_repeat_while_firing_at_the_repeat_interval(engine, settings, trader, receiver, clock):
    make_rule(engine, settings, trader, repeat_seconds=300,
              notify=[webhook(engine, settings, trader, receiver)])
    alerts, sender = evaluator(settings, engine, clock)
    for _ in range(7):
        simple_book(engine, MARKET, clock.now, "990", "980")
        alerts.evaluate_all()
        sender.send_due()
        clock.advance(60)
    keys = [r.headers["Idempotency-Key"].split(":")[-2] for r in receiver.requests]
    assert len(receiver.requests) == 2, keys  # the firing and one repeat after 5 minutes
    assert ":repeat:" in receiver.requests[1].headers["Idempotency-Key"]


def test_a_silenced_rule_keeps_evaluating_and_records_but_sends_nothing(
        engine, settings, trader, receiver, clock):
    rule_id = make_rule(engine, settings, trader, labels={"desk": "ars"},
                        notify=[webhook(engine, settings, trader, receiver)])
    service.create_silence(engine, trader, {
        "matchers": [{"name": "desk", "op": "=", "value": "ars"}],
        "starts_at": (clock.now - timedelta(minutes=1)).isoformat(),
        "ends_at": (clock.now + timedelta(minutes=5)).isoformat()})
    alerts, sender = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "990", "980")
    alerts.evaluate_all()
    assert alerts.states[rule_id].state == "firing"
    assert sender.send_due() == 0
    assert store.events(engine, rule_id=rule_id)[0]["silenced"] is True
    clock.advance(400)  # the silence ends while the rule still fires: now it is sent
    simple_book(engine, MARKET, clock.now, "991", "980")
    alerts.evaluate_all()
    assert sender.send_due() == 1
    assert receiver.alerts()[0][0] == "firing"


def test_a_receiver_answering_429_is_retried_after_its_retry_after(
        engine, settings, trader, receiver, clock):
    make_rule(engine, settings, trader, notify=[webhook(engine, settings, trader, receiver)])
    receiver.answers = [(429, {"Retry-After": "30"}), (503, {})]
    alerts, sender = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "990", "980")
    alerts.evaluate_all()
    assert sender.send_due() == 1 and receiver.requests == []
    clock.advance(20)
    assert sender.send_due() == 0, "Retry-After: 30 is honoured"
    clock.advance(11)
    assert sender.send_due() == 1 and receiver.requests == []  # the 503
    clock.advance(5)
    assert sender.send_due() == 1
    assert len(receiver.requests) == 1
    log = store.deliveries(engine)
    assert log[0]["status"] == "sent" and log[0]["attempts"] == 3


def test_a_failing_contact_point_is_marked_and_the_rule_state_is_unaffected(
        engine, settings, trader, receiver, clock):
    hook = webhook(engine, settings, trader, receiver)
    rule_id = make_rule(engine, settings, trader, notify=[hook])
    receiver.answers = [(400, {})]
    alerts, sender = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "990", "980")
    alerts.evaluate_all()
    sender.send_due()
    point = next(c for c in service.visible_contacts(engine, trader) if c["id"] == hook)
    assert point["failing"] is True and point["last_error"].startswith("HTTP 400")
    delivery = store.deliveries(engine, rule_id=rule_id)[0]
    assert delivery["status"] == "failed" and delivery["status_code"] == 400
    assert alerts.states[rule_id].state == "firing"


def test_webhooks_are_signed_with_hmac_sha256_of_the_body(
        engine, settings, trader, receiver, clock):
    hook = webhook(engine, settings, trader, receiver, secret="s3cr3t-signing")
    make_rule(engine, settings, trader, notify=[hook])
    alerts, sender = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "990", "980")
    alerts.evaluate_all()
    sender.send_due()
    request = receiver.requests[0]
    expected = hmac.new(b"s3cr3t-signing", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-P2pdash-Signature"] == f"sha256={expected}"


def test_filtered_rules_read_the_same_numbers_as_the_views(engine, settings, trader, clock):
    asks = [offer(1, "990", methods=("BANK",), max_fiat="100000"),
            offer(2, "995", methods=("MercadoPagoNew",), merchant=True),
            offer(3, "1001", methods=("MercadoPagoNew",))]
    bids = [offer(4, "980"), offer(5, "985", completion="0.5")]
    store_book(engine, MARKET, clock.now, asks, bids)
    filters = {"amount": "200000", "payment": ["mercadopago"]}
    rules = {name: make_rule(engine, settings, trader, name=name, metric=name,
                             filters=filters, condition=">", threshold="0")
             for name in ("p2p.best_ask", "p2p.best_bid", "p2p.spread_pct",
                          "p2p.liquidity_ask")}
    alerts, _ = evaluator(settings, engine, clock)
    alerts.evaluate_all()
    view = summary(engine, "binance", "USDT", "ARS",
                   OfferFilter(Decimal("200000"), ("mercadopago",)))
    assert view["best_ask"] == Decimal("995")
    for name, key in (("p2p.best_ask", "best_ask"), ("p2p.best_bid", "best_bid"),
                      ("p2p.spread_pct", "spread_pct"), ("p2p.liquidity_ask", "ask_liquidity")):
        if view[key] is None:  # no advert passes the filters: no data (after a grace)
            assert alerts.states[rules[name]].value is None
        else:
            assert alerts.states[rules[name]].value == view[key], name


def test_premium_and_cross_spread_from_two_markets_and_spot(engine, settings, trader, clock):
    simple_book(engine, "binance:USDT/ARS", clock.now, "1010", "990")
    simple_book(engine, "okx:USDT/ARS", clock.now, "1030", "1020")
    simple_book(engine, "binance:BTC/ARS", clock.now, "95000000", "94000000")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO tickers_24h (exchange, symbol, ts, last) "
            "VALUES ('binance', 'BTCUSDT', :ts, 90000)"), {"ts": clock.now})
    premium = make_rule(engine, settings, trader, name="premium", metric="p2p.premium_pct",
                        condition=">", threshold="5")
    cross = make_rule(engine, settings, trader, name="cross", metric="p2p.cross_spread_pct",
                      other="okx:USDT/ARS", condition=">", threshold="0.5")
    alerts, _ = evaluator(settings, engine, clock)
    alerts.evaluate_all()
    # usdt mid 1000, btc mid 94.5M / 90000 = 1050 implied: premium = 1000/1050 - 1
    assert alerts.states[premium].value == Decimal("-4.761905")
    assert alerts.states[premium].state == "normal"
    # buy binance at 1010, sell okx at 1020: (1020-1010)/1015 = 0.985222 %
    assert alerts.states[cross].value == Decimal("0.985222")
    assert alerts.states[cross].state == "firing"


def test_spot_rules_and_a_silent_feed(engine, settings, trader, clock):
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO tickers_24h (exchange, symbol, ts, last) VALUES "
            "('binance', 'BTCUSDT', :ts, 91000.5)"), {"ts": clock.now})
        connection.execute(text(
            "INSERT INTO book_tickers (exchange, symbol, ts, bid, bid_qty, ask, ask_qty) "
            "VALUES ('binance', 'BTCUSDT', :ts, 91000, 1, 91001, 1)"), {"ts": clock.now})
    last = make_rule(engine, settings, trader, name="btc", metric="spot.last",
                     market=None, symbol="BTCUSDT", condition=">", threshold="90000")
    bps = make_rule(engine, settings, trader, name="bps", metric="spot.book_spread_bps",
                    market=None, symbol="BTCUSDT", condition=">", threshold="1")
    silent = make_rule(engine, settings, trader, name="feed", metric="feed.age_seconds",
                       market=None, symbol="BTCUSDT", condition=">", threshold="120")
    alerts, _ = evaluator(settings, engine, clock)
    alerts.evaluate_all()
    assert alerts.states[last].state == "firing"
    assert alerts.states[bps].value == Decimal("0.1099")
    assert alerts.states[silent].state == "normal"
    clock.advance(300)
    alerts.tick()
    assert alerts.states[silent].state == "firing"
    assert alerts.states[silent].value == Decimal("300.0")
    assert alerts.states[last].state == "nodata"  # 5 minutes without a ticker


def test_a_failing_query_is_the_error_state(engine, settings, trader, clock):
    rule_id = make_rule(engine, settings, trader)
    alerts, _ = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "990", "980")
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE p2p_snapshots RENAME TO p2p_snapshots_gone"))
    try:
        alerts.evaluate_all()
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE p2p_snapshots_gone RENAME TO p2p_snapshots"))
    assert alerts.states[rule_id].state == "error"
    assert "p2p_snapshots" in alerts.states[rule_id].error
    alerts.evaluate_all()
    assert alerts.states[rule_id].state == "firing"


def test_states_survive_a_new_evaluator(engine, settings, trader, clock):
    rule_id = make_rule(engine, settings, trader)
    alerts, _ = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "990", "980")
    alerts.evaluate_all()
    again, _ = evaluator(settings, engine, clock)
    again.evaluate_all()
    assert again.states[rule_id].state == "firing"
    assert states(engine, rule_id) == [("normal", "firing")]


def test_a_new_rule_waits_its_nodata_age_for_a_first_value(engine, settings, trader, clock):
    rule_id = make_rule(engine, settings, trader, nodata_seconds=120)
    alerts, _ = evaluator(settings, engine, clock)
    clock.now = store.get_rule(engine, rule_id).state.since
    alerts.evaluate_all()
    assert alerts.states[rule_id].state == "normal"
    clock.advance(121)
    alerts.evaluate_all()
    assert alerts.states[rule_id].state == "nodata"


def test_disabling_a_firing_rule_ends_its_alerting_and_says_so(engine, settings, trader, clock):
    rule_id = make_rule(engine, settings, trader)
    alerts, _ = evaluator(settings, engine, clock)
    simple_book(engine, MARKET, clock.now, "990", "980")
    alerts.evaluate_all()
    assert store.firing_count(engine, trader.user_id) == 1
    service.update_rule(engine, settings, trader, rule_id, {"enabled": False})
    assert store.get_rule(engine, rule_id).state.state == "normal"
    assert store.firing_count(engine, trader.user_id) == 0
    assert store.events(engine, rule_id=rule_id)[0]["message"] == "paused: the rule was disabled"
    alerts.evaluate_all()
    assert rule_id not in alerts.rules


def test_thousands_of_states_are_saved_in_one_pass(engine, trader, clock):
    with engine.begin() as connection:
        ids = list(connection.scalars(text(
            "INSERT INTO alert_rules (user_id, name, metric, subject, condition, threshold) "
            "SELECT :u, 'r' || n, 'p2p.best_ask', '{\"market\": \"binance:USDT/ARS\"}', '<', 1 "
            "FROM generate_series(1, 7000) AS n RETURNING id"), {"u": trader.user_id}))
    batch = store.Evaluation(states={
        rule_id: store.RuleState(state="firing", since=clock.now, value=Decimal("1.5"))
        for rule_id in ids})
    with engine.begin() as connection:
        store.save_evaluation(connection, batch, clock.now)
    assert store.firing_count(engine, trader.user_id) == 7000
