"""The Alerts page without a browser: the form's rule JSON, which fields show, where errors
go, the overlays the charts draw, and its callbacks as POSTs (the preview sentence, a save,
another trader's NotFound, a kiosk refused)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.alerts import service
from app.alerts.rules import Catalog, parse_rule
from callbacks import alerts, alerts_form
from db.alert_model import Rule, Subject
from layouts import ids
from layouts.alerts_form import ERROR_SLOTS, FORM_FIELDS
from layouts.figures import preview_figure, with_alerts, with_price_lines
from tests.alerts.conftest import MARKETS, actor_for, simple_book
from tests.conftest import AuthActions
from tests.dash_calls import callback_body

MARKET = MARKETS[0]


def form(**values) -> dict:
    """A form as the browser sends it: every field, these ones filled."""
    base = {key: None for key in FORM_FIELDS}
    base.update(name="ask high", metric="p2p.best_ask", market=MARKET, other=MARKETS[1],
                condition=">", threshold="1100", enabled=True, severity="warning")
    base.update(values)
    return base


def test_a_form_becomes_the_rule_json_the_service_takes(settings):
    data, errors = alerts_form.rule_data(form(amount="200000", payment=["mercadopago"],
                                              completion_pct="95", labels="desk=ars"))
    assert errors == []
    assert data["filters"] == {"amount": "200000", "payment": ["mercadopago"],
                               "min_completion": "0.95"}
    assert data["labels"] == {"severity": "warning", "desk": "ars"}
    assert "other" not in data and "low" not in data, "only what the metric needs"
    draft = parse_rule(data, Catalog.of(settings))
    assert str(draft.columns["subject"].min_completion) == "0.95"


def test_a_band_sends_low_and_high_and_spot_rules_send_no_filters():
    data, _ = alerts_form.rule_data(form(condition="outside", low="1", high="2",
                                         amount="5"))
    assert (data["low"], data["high"]) == ("1", "2") and "threshold" not in data
    data, _ = alerts_form.rule_data(form(metric="spot.change_pct", symbol="BTCUSDT",
                                         window_seconds="3600", amount="5"))
    assert data["filters"] == {} and data["window_seconds"] == 3600
    assert data["symbol"] == "BTCUSDT" and "market" not in data


def test_bad_labels_are_reported_before_the_rule_check():
    _, errors = alerts_form.rule_data(form(labels="desk=ars, nonsense"))
    assert errors == [{"field": "labels", "message": "'nonsense' is not key=value"}]


@pytest.mark.parametrize(("metric", "condition", "shown"), [
    ("p2p.best_ask", ">", {"market", "filters", "threshold"}),
    ("p2p.cross_spread_pct", "outside", {"market", "other", "filters", "band-low",
                                         "band-high"}),
    ("spot.change_pct", ">", {"symbol", "window", "threshold"}),
    ("spot.last", "change_pct", {"symbol", "window", "threshold", "direction"}),
    ("feed.age_seconds", ">", {"market", "symbol", "threshold"}),
])
def test_the_form_shows_only_what_the_metric_and_condition_need(metric, condition, shown):
    parts = alerts_form.visible_parts(metric, condition)
    assert {part for part, visible in parts.items() if visible} == shown


def test_errors_go_next_to_their_fields():
    found = alerts_form.slot_messages([
        {"field": "threshold", "message": "is required"},
        {"field": "filters.min_completion", "message": "must be from 0 to 1 (0.95 = 95 %)"},
        {"field": "labels.severity", "message": "must be one of info, warning, critical"},
        {"field": "body", "message": "must be a JSON object"}])
    assert found == {"threshold": "is required",
                     "filters-min_completion": "must be a percentage from 0 to 100",
                     "labels": "must be one of info, warning, critical",
                     "form": "body: must be a JSON object"}
    assert set(found) <= set(ERROR_SLOTS)


def test_a_stored_rule_fills_the_form_it_came_from(app, settings, engine):
    owner = actor_for(app)
    data, _ = alerts_form.rule_data(form(amount="1000", completion_pct="90",
                                         labels="desk=ars", for_seconds="120"))
    row = service.create_rule(engine, settings, owner, data)
    with app.app_context():
        values = alerts_form.form_values(service.editable_json(row))
    assert (values["amount"], values["completion_pct"], values["labels"]) == (
        "1000", "90", "desk=ars")
    catalog = Catalog.of(settings)
    again = alerts_form.rule_data(values)[0]
    assert parse_rule(again, catalog).columns == parse_rule(data, catalog).columns


def test_thresholds_and_periods_on_the_spread_chart_follow_its_buckets():
    figure = {"data": [{"x": [0]}], "layout": {"shapes": []}}
    hour = 3_600_000
    drawn = with_alerts(figure, lines=[{"value": 1.5, "axis": "y2", "label": "r"}],
                        periods=[{"start": hour + 10, "end": None}], now_ms=hour + 20,
                        bucket_ms=hour)
    line, rect = drawn["layout"]["shapes"]
    assert (line["yref"], line["y0"], line["xref"]) == ("y2", 1.5, "x domain")
    assert (rect["x0"], rect["x1"], rect["yref"]) == (hour, 2 * hour, "paper")
    assert figure["layout"]["shapes"] == [], "the builder returns a new figure"
    assert with_alerts(figure) is figure
    depth = with_price_lines({"data": [], "layout": {}}, [{"value": 1200.0, "label": "a"}])
    assert depth["layout"]["shapes"][0]["x0"] == 1200.0


def test_the_preview_marks_the_moments_it_would_have_fired():
    samples = {"t": [0, 60_000, 120_000, 180_000], "value": [1.0, 3.0, 1.0, 3.0]}
    figure = preview_figure(samples, name="m", unit="%", tz=None, dark=True,
                            lines=[{"value": 2.0}], firings=[60_000, 180_000],
                            periods=[{"start": 60_000, "end": 120_000}], now_ms=200_000,
                            bucket_ms=60_000)
    assert figure["data"][1]["y"] == [3.0, 3.0]
    assert [s["type"] for s in figure["layout"]["shapes"]] == ["line", "rect"]


def test_a_rule_reads_like_the_list():
    rule = Rule(id=1, user_id=1, name="n", metric="p2p.best_ask",
                subject=Subject(market=MARKET), condition="crosses_above",
                threshold=Decimal("1250.50"))
    assert alerts.condition_text(rule) == "crosses above 1,250.5"
    assert alerts.value_text(Decimal("1300"), rule) == "1,300 ARS"
    assert alerts.threshold_lines(rule) == [
        {"value": 1250.5, "axis": "y", "label": "n (crosses above 1,250.5)"}]


def post(client, dash_app, key_input: str, values: dict):
    key = next(k for k, entry in dash_app.callback_map.items()
               if any(f"{d['id']}.{d['property']}" == key_input for d in entry["inputs"]))
    body = callback_body(dash_app.callback_map, key, values, changed=key_input)
    return client.post("/_dash-update-component", json=body,
                       headers=AuthActions(client).dash_headers())


def form_values(**values) -> dict:
    return {f"{component}.{prop}": value for key, (component, prop) in FORM_FIELDS.items()
            if (value := form(**values)[key]) is not None}


def test_the_preview_callback_says_how_often_it_would_have_fired(app, dash_app, engine,
                                                                  client_as):
    now = datetime.now(UTC)
    for minutes, ask in ((50, "1000"), (40, "1200"), (30, "1000"), (20, "1200"), (10, "1000")):
        simple_book(engine, MARKET, now - timedelta(minutes=minutes), ask, "990")
    answer = post(client_as("trader"), dash_app, f"{ids.ALERTS_FORM_THRESHOLD}.value", {
        **form_values(), f"{ids.ALERTS_PREVIEW_SPAN}.value": "1d",
        f"{ids.ALERTS_EDITING}.data": {"id": None, "open": True}})
    assert answer.status_code == 200
    assert "Would have fired 2 times in the last 24 h" in answer.get_data(as_text=True)


def test_save_is_for_owners_and_only_of_their_own_rules(app, dash_app, engine, settings,
                                                         client_as):
    theirs = service.create_rule(engine, settings, actor_for(app, "analyst", "alice"),
                                 alerts_form.rule_data(form())[0]).rule
    save = f"{ids.ALERTS_SAVE}.n_clicks"
    values = {save: 1, **form_values(name="taken"),
              f"{ids.ALERTS_EDITING}.data": {"id": theirs.id, "open": True}}
    assert post(client_as("kiosk"), dash_app, save, values).status_code == 403
    answer = post(client_as("trader"), dash_app, save, values)
    assert "no such alert rule" in json.dumps(answer.get_json())
    assert service.rule_for(engine, actor_for(app, "admin"), theirs.id).rule.name == "ask high"
    answer = post(client_as("trader"), dash_app, save, {
        **values, f"{ids.ALERTS_EDITING}.data": {"id": None, "open": True}})
    assert "saved" in json.dumps(answer.get_json())


def test_a_disabled_rule_is_listed_as_such_and_filtered_by_it(app, settings, engine):
    owner = actor_for(app)
    data = alerts_form.rule_data(form(enabled=False))[0]
    row = service.create_rule(engine, settings, owner, data)
    assert alerts.rule_row(row, None, "")["state"] == "Disabled"
    assert alerts.chosen_rows([row], ["disabled"], None) == [row]
    assert alerts.chosen_rows([row], ["normal"], None) == []


def test_charts_draw_only_the_rules_with_the_filters_they_show(app, settings, engine):
    from flask_login import login_user

    from app.auth import users
    from db.p2p_query import NO_FILTER, OfferFilter

    trader = actor_for(app, "trader")
    whole = service.create_rule(engine, settings, trader, {
        "name": "whole book", "metric": "p2p.best_ask", "market": MARKET, "condition": ">",
        "threshold": "1100"}).rule
    narrow = service.create_rule(engine, settings, trader, {
        "name": "by mercadopago", "metric": "p2p.best_ask", "market": MARKET,
        "condition": ">", "threshold": "1150",
        "filters": {"amount": "150000", "payment": ["mercadopago"]}}).rule
    with app.test_request_context():
        login_user(users.find(engine, "trader"))
        unfiltered = alerts.own_chart_rules(("p2p.best_ask",), markets=[MARKET])
        filtered = alerts.own_chart_rules(
            ("p2p.best_ask",), markets=[MARKET],
            filters=OfferFilter(Decimal("150000.00"), ("mercadopago",)))
        assert [rule.id for rule in unfiltered] == [whole.id]
        assert [rule.id for rule in filtered] == [narrow.id]
        assert alerts.depth_lines(MARKET, NO_FILTER)[0]["value"] == 1100
