"""Callbacks of the Alerts page: the rule list with its state and value now, the kiosk's
alerting list, history, deliveries, contact points and silences; and the alert overlays the
charts draw. Every change goes through app.alerts.service as the signed-in user, which
answers NotFound for anything another user owns."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dash import Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate
from flask_login import current_user
from sqlalchemy import Engine

from app import access, state
from app.alerts import service
from app.alerts.conditions import CONDITIONS
from app.alerts.metrics import METRICS, market_of
from app.alerts.service import OWNERS, Actor, AlertError
from callbacks import common
from callbacks.admin import feedback
from db import alerts as store
from db.alert_model import ALERTING, STATE_LABELS, Rule, Sample, Subject
from db.cache import memoized
from db.p2p_query import NO_FILTER, OfferFilter
from layouts import ids
from layouts.figures import spark_text
from layouts.urlstate import search

KIOSK = ("kiosk",)
DISABLED = "Disabled"
SPARK_SECONDS = 300
SPARK_WIDTH = timedelta(hours=1)
DAY = timedelta(days=1)
SYMBOLIC = (">", ">=", "<", "<=")
UNITS = {"%": " %", "s": " s", "bps": " bps"}
MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|=)\s*(.*?)\s*$")
# Metrics the spread chart draws, and on which pane: prices on top, spread % below.
SPREAD_AXES = {"p2p.best_ask": "y", "p2p.best_bid": "y", "p2p.spread_pct": "y2"}
DEPTH_METRICS = ("p2p.best_ask", "p2p.best_bid")


def engine() -> Engine:
    """The database engine of this app."""
    return state.current().engine


def actor() -> Actor:
    """The signed-in user as the alerting commands know them."""
    if not current_user or not current_user.is_authenticated:
        raise PermissionError("alerting needs a signed-in user")
    return Actor(current_user.id, current_user.username, current_user.role)


def when(moment: datetime | None) -> str:
    """A time as 'YYYY-MM-DD HH:MM:SS' UTC, or ''."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def number_text(value: Decimal | float | None) -> str:
    """A number with thousands separators and no trailing zeros."""
    if value is None:
        return ""
    text = f"{Decimal(str(value)):,.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def value_text(value: Decimal | None, rule: Rule) -> str:
    """A metric value with its unit (the fiat of a price)."""
    if value is None:
        return ""
    unit = METRICS[rule.metric].unit
    suffix = UNITS.get(unit, "")
    if unit == "fiat" and rule.subject.market:
        suffix = " " + market_of(rule.subject.market).fiat
    return number_text(value) + suffix


def condition_text(rule: Rule) -> str:
    """The condition as the list shows it: '> 1250', 'outside 1..2', 'changes up 5 % / 1 h'."""
    if rule.condition == "change_pct":
        window = f"{(rule.window_seconds or 0) // 60} min"
        return f"changes {rule.direction or 'either'} {number_text(rule.threshold)} % / {window}"
    if CONDITIONS[rule.condition].band:
        return f"{rule.condition} {number_text(rule.low)}..{number_text(rule.high)}"
    name = rule.condition if rule.condition in SYMBOLIC else CONDITIONS[rule.condition].label
    return f"{name} {number_text(rule.threshold)}"


def labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))


@memoized(SPARK_SECONDS)
def spark_values(engine: Engine, metric: str, subject: Subject, *,
                 now: datetime) -> list[float]:
    """A metric's values over the last day in hourly buckets (for a text sparkline)."""
    samples = METRICS[metric].series(engine, subject, now - DAY, now, SPARK_WIDTH)
    return [float(sample.value) for sample in samples]


def sparkline(rule: Rule) -> str:
    """The rule's metric over the last day as block characters ('' when unknown)."""
    return spark_text(spark_values(rule.metric, rule.subject))


def rule_row(row: store.RuleRow, value: Sample | None, spark: str) -> dict[str, Any]:
    """A rule as a row of the list."""
    rule, now = row.rule, row.state
    status = STATE_LABELS[now.state] if rule.enabled else DISABLED
    return {"id": str(rule.id), "name": rule.name, "state": status,
            "value": value_text(value.value if value else now.value, rule),
            "threshold": condition_text(rule), "subject": rule.subject.describe(),
            "spark": spark, "labels": labels_text(rule.labels), "since": when(now.since),
            "owner": rule.owner, "enabled": rule.enabled, "metric": rule.metric}


def label_pairs(rows: Sequence[store.RuleRow]) -> list[str]:
    """Every 'key=value' label of some rules, once each, sorted."""
    return sorted({f"{key}={value}" for row in rows for key, value in row.rule.labels.items()})


def chosen_rows(rows: Sequence[store.RuleRow], states: Sequence[str] | None,
                labels: Sequence[str] | None) -> list[store.RuleRow]:
    """The rules in one of `states` carrying every one of `labels` (none given: all)."""
    wanted = set(labels or ())
    return [row for row in rows
            if (not states or (row.state.state if row.rule.enabled else "disabled") in states)
            and wanted <= {f"{k}={v}" for k, v in row.rule.labels.items()}]


def rules_rows(who: Actor, states: Sequence[str] | None,
               labels: Sequence[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of the actor's rule list after the filters, and the label choices."""
    rows = service.visible_rules(engine(), who)
    shown = chosen_rows(rows, states, labels)
    values = service.current_values(engine(), [row.rule for row in shown])
    return ([rule_row(row, values.get(row.rule.id), sparkline(row.rule)) for row in shown],
            label_pairs(rows))


def kiosk_rows() -> list[dict[str, Any]]:
    """Every rule alerting now, everyone's: what a wall screen shows."""
    rows = [row for row in store.list_rules(engine())
            if row.rule.enabled and row.state.state in ALERTING]
    return [{"id": str(row.rule.id), "name": row.rule.name,
             "state": STATE_LABELS[row.state.state],
             "subject": row.rule.subject.describe(),
             "value": value_text(row.state.value, row.rule),
             "threshold": condition_text(row.rule),
             "since": when(row.state.active_since or row.state.since)} for row in rows]


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def chart_link(event: dict[str, Any]) -> str:
    """A markdown link to the subject's chart at the moment of a transition."""
    subject = event.get("subject") or {}
    moment = event.get("data_at") or event["at"]
    if subject.get("market"):
        query = search({"market": subject["market"], "at": _iso_z(moment)})
        return f"[depth then](/depth{query})"
    if subject.get("symbol"):
        return f"[candles](/candles{search({'symbol': subject['symbol']})})"
    return ""


def event_row(event: dict[str, Any]) -> dict[str, Any]:
    """A transition as a row of the history."""
    return {"id": str(event["id"]), "at": when(event["at"]), "rule": event["rule_name"],
            "from_state": STATE_LABELS.get(event["from_state"], event["from_state"]),
            "to_state": STATE_LABELS.get(event["to_state"], event["to_state"]),
            "value": number_text(event["value"]), "threshold": event["threshold"] or "",
            "data_at": when(event["data_at"]), "run_id": event["run_id"],
            "silenced": "silenced" if event["silenced"] else "", "chart": chart_link(event)}


def history_rows(who: Actor, rule_id: int | None) -> list[dict[str, Any]]:
    """Transitions of one of the actor's rules, or of all they may see."""
    if rule_id:
        try:
            service.rule_for(engine(), who, int(rule_id))
        except AlertError:
            return []
        return [event_row(e) for e in store.events(engine(), rule_id=int(rule_id))]
    user_id = None if who.is_admin else who.user_id
    return [event_row(e) for e in store.events(engine(), user_id=user_id)]


def delivery_row(item: dict[str, Any]) -> dict[str, Any]:
    """A queued notification and its last answer."""
    answer = item["last_error"] or item["response"] or ""
    if item["status_code"]:
        answer = f"HTTP {item['status_code']}" + (f": {answer}" if answer else "")
    return {"id": str(item["id"]), "created": when(item["created_at"]),
            "rule": item["rule_name"] or "(test)", "contact": item["contact_name"],
            "kind": item["kind"], "status": item["status"], "attempts": item["attempts"],
            "answer": answer}


def contact_row(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact point as the list shows it (its target masked, its secrets never)."""
    health = "never used"
    if contact["failing"]:
        health = f"failing: {contact['last_error'] or 'no answer'}"
    elif contact["last_ok_at"]:
        health = f"ok {contact['last_ok_at'][:19].replace('T', ' ')}"
    return {"id": str(contact["id"]), "name": contact["name"], "kind": contact["kind"],
            "target": contact["target"], "signed": "yes" if contact["signed"] else "",
            "shared": "yes" if contact["shared"] else "", "owner": contact["owner"] or "",
            "health": health}


def silence_row(silence: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """A silence: the rule or the matchers, its window and whether it is in force."""
    if silence["rule_id"] is not None:
        what = f"rule: {names.get(silence['rule_id'], silence['rule_id'])}"
    else:
        what = ", ".join(f"{m['name']}{m.get('op', '=')}{m['value']}"
                         for m in silence["matchers"])
    starts, ends = (datetime.fromisoformat(silence[key].replace("Z", "+00:00"))
                    for key in ("starts_at", "ends_at"))
    now = datetime.now(UTC)
    active = "active" if starts <= now < ends else ("ended" if ends <= now else "upcoming")
    return {"id": str(silence["id"]), "what": what, "starts": when(starts), "ends": when(ends),
            "active": active, "comment": silence["comment"] or "",
            "owner": silence["owner"] or ""}


def matchers_of(text: str | None) -> list[dict[str, str]]:
    """'severity=critical, market!=x' as silence matchers; ValueError on a bad one."""
    out = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        match = MATCHER.match(item)
        if not match:
            raise ValueError(f"{item.strip()!r} is not name=value or name!=value")
        out.append({"name": match[1], "op": match[2], "value": match[3]})
    return out


def local_time(text: str | None, tz: str) -> str | None:
    """A datetime-local value in the viewer's zone as ISO 8601 UTC, or None when empty."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(common.tz_name(tz)))
    return _iso_z(moment)


def messages(error: AlertError) -> str:
    """An AlertError in one sentence, its fields named."""
    details = "; ".join(f"{e['field']}: {e['message']}" for e in error.errors)
    return f"{error.message}: {details}" if details else error.message


# ---- overlays on the charts ----------------------------------------------------------------

def threshold_lines(rule: Rule, axis: str = "y") -> list[dict[str, Any]]:
    """A rule's threshold (or band edges) as lines {value, axis, label}."""
    if rule.condition == "change_pct":
        return []
    values = ([rule.low, rule.high] if CONDITIONS[rule.condition].band else [rule.threshold])
    return [{"value": float(value), "axis": axis, "label": f"{rule.name} ({condition_text(rule)})"}
            for value in values if value is not None]


# A chart draws its viewer's thresholds on every live tick: their rules are read at most
# this often (a rule saved on the alerts page shows on the charts within it).
CHART_RULES_SECONDS = 5


@memoized(CHART_RULES_SECONDS)
def chart_rules(engine: Engine, user_id: int) -> list[Rule]:
    """A user's enabled rules that a chart may draw."""
    return [row.rule for row in store.list_rules(engine, user_id)
            if row.rule.enabled and row.rule.subject.other is None]


def own_chart_rules(metrics: Sequence[str], markets: Sequence[str] = (),
                    symbols: Sequence[str] = (), filters: OfferFilter = NO_FILTER) -> list[Rule]:
    """The signed-in user's enabled rules on these markets or symbols whose metric a chart
    draws, with the offer filters the chart shows (a rule on 200,000 ARS by mercadopago is
    not drawn on the whole book)."""
    if not current_user or not current_user.is_authenticated or current_user.role not in OWNERS:
        return []
    return [rule for rule in chart_rules(current_user.id)
            if rule.metric in metrics
            and (rule.subject.market in markets or rule.subject.symbol in symbols)
            and (rule.subject.symbol or rule.subject.offer_filter == filters)]


def depth_lines(market: str, filters: OfferFilter = NO_FILTER) -> list[dict[str, Any]]:
    """The user's best ask and best bid thresholds on a market, for the depth chart's price
    axis (layouts.figures.with_price_lines)."""
    return [line for rule in own_chart_rules(DEPTH_METRICS, markets=[market], filters=filters)
            for line in threshold_lines(rule)]


def candle_lines(symbol: str) -> list[dict[str, Any]]:
    """The user's spot.last thresholds on a symbol, for the candles' price pane
    (layouts.figures.with_alerts)."""
    return [line for rule in own_chart_rules(("spot.last",), symbols=[symbol])
            for line in threshold_lines(rule)]


def _epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def spread_overlays(markets: Sequence[str], span_seconds: int,
                    filters: OfferFilter = NO_FILTER
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Threshold lines and alerting periods of the user's rules for the spread chart."""
    rules = own_chart_rules(tuple(SPREAD_AXES), markets=markets, filters=filters)
    if not rules:
        return [], []
    end = datetime.now(UTC)
    found = store.periods(engine(), [rule.id for rule in rules],
                          end - timedelta(seconds=span_seconds), end)
    lines = [line for rule in rules for line in threshold_lines(rule, SPREAD_AXES[rule.metric])]
    periods = [{"start": _epoch_ms(start), "end": _epoch_ms(stop), "label": rule.name}
               for rule in rules for start, stop in found.get(rule.id, [])]
    return lines, periods


# ---- callbacks -----------------------------------------------------------------------------

def register(dash_app: Dash) -> None:
    """Every callback of the Alerts page (the rule form's live in callbacks.alerts_form)."""
    from callbacks import alerts_form

    _register_lists(dash_app)
    _register_contacts(dash_app)
    _register_contact_actions(dash_app)
    _register_silences(dash_app)
    _register_silence_actions(dash_app)
    alerts_form.register(dash_app)


def _register_lists(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.ALERTS_KIOSK_GRID, "rowData"),
        Input(ids.LIVE, "n_intervals"),
        roles=KIOSK,
    )
    def update_kiosk(_ticks):
        return kiosk_rows()

    @access.callback(
        dash_app,
        Output(ids.ALERTS_GRID, "rowData"), Output(ids.ALERTS_LABEL_FILTER, "options"),
        Input(ids.ALERTS_VERSION, "data"), Input(ids.LIVE, "n_intervals"),
        Input(ids.ALERTS_STATE_FILTER, "value"), Input(ids.ALERTS_LABEL_FILTER, "value"),
        State(ids.ALERTS_TABS, "active_tab"),
        roles=OWNERS,
    )
    def update_rules(_version, _ticks, states, labels, tab):
        if ctx.triggered_id == ids.LIVE and tab not in (None, "rules"):
            raise PreventUpdate
        return rules_rows(actor(), states, labels)

    @access.callback(
        dash_app,
        Output(ids.ALERTS_HISTORY_GRID, "rowData"), Output(ids.ALERTS_HISTORY_RULE, "options"),
        Input(ids.ALERTS_HISTORY_RULE, "value"), Input(ids.ALERTS_VERSION, "data"),
        Input(ids.LIVE, "n_intervals"), Input(ids.ALERTS_TABS, "active_tab"),
        roles=OWNERS,
    )
    def update_history(rule_id, _version, _ticks, tab):
        if tab != "history" and ctx.triggered_id == ids.LIVE:
            raise PreventUpdate
        who = actor()
        choices = [{"label": row.rule.name, "value": row.rule.id}
                   for row in service.visible_rules(engine(), who)]
        return history_rows(who, rule_id), choices

    @access.callback(
        dash_app,
        Output(ids.ALERTS_DELIVERIES_GRID, "rowData"),
        Input(ids.ALERTS_TABS, "active_tab"), Input(ids.LIVE, "n_intervals"),
        roles=OWNERS,
    )
    def update_deliveries(tab, _ticks):
        if tab != "deliveries":
            raise PreventUpdate
        who = actor()
        return [delivery_row(item) for item in store.deliveries(
            engine(), user_id=None if who.is_admin else who.user_id)]

    @access.callback(
        dash_app,
        Output(ids.ALERTS_URL, "search"),
        Input(ids.ALERTS_TABS, "active_tab"), Input(ids.ALERTS_EDITING, "data"),
        roles=OWNERS,
        prevent_initial_call=True,
    )
    def on_tab_or_rule(tab, editing):
        rule_id = (editing or {}).get("id")
        return search({"tab": tab if tab != "rules" else None, "rule": rule_id})


def _register_contacts(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.ALERTS_CONTACTS_GRID, "rowData"),
        Input(ids.ALERTS_CONTACTS_VERSION, "data"), Input(ids.ALERTS_TABS, "active_tab"),
        roles=OWNERS,
    )
    def update_contacts(_version, _tab):
        return [contact_row(c) for c in service.visible_contacts(engine(), actor())]

    @access.callback(
        dash_app,
        Output(ids.ALERTS_CONTACT_URL + "-group", "style"),
        Output(ids.ALERTS_CONTACT_TO + "-group", "style"),
        Output(ids.ALERTS_CONTACT_SECRET + "-group", "style"),
        Input(ids.ALERTS_CONTACT_KIND, "value"),
        roles=OWNERS,
    )
    def update_contact_fields(kind):
        shown, hidden = {}, {"display": "none"}
        return (hidden if kind == "email" else shown, shown if kind == "email" else hidden,
                shown if kind == "webhook" else hidden)



def _register_contact_actions(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.ALERTS_CONTACT_FEEDBACK, "children"),
        Output(ids.ALERTS_CONTACTS_VERSION, "data"),
        Output(ids.ALERTS_CONTACT_NAME, "value"), Output(ids.ALERTS_CONTACT_URL, "value"),
        Output(ids.ALERTS_CONTACT_TO, "value"), Output(ids.ALERTS_CONTACT_SECRET, "value"),
        inputs={"clicks": Input(ids.ALERTS_CONTACT_ADD, "n_clicks")},
        state={"name": State(ids.ALERTS_CONTACT_NAME, "value"),
               "kind": State(ids.ALERTS_CONTACT_KIND, "value"),
               "url": State(ids.ALERTS_CONTACT_URL, "value"),
               "to": State(ids.ALERTS_CONTACT_TO, "value"),
               "secret": State(ids.ALERTS_CONTACT_SECRET, "value"),
               "version": State(ids.ALERTS_CONTACTS_VERSION, "data")},
        roles=OWNERS,
        prevent_initial_call=True,
    )
    def on_add_contact(*, clicks, name, kind, url, to, secret, version):
        if not clicks:
            raise PreventUpdate
        data = {"name": name, "kind": kind, "url": url, "to": to, "secret": secret or None}
        try:
            made = service.create_contact(engine(), state.current().settings, actor(), data)
        except AlertError as error:
            return feedback(False, messages(error)), *[no_update] * 5
        # The URL and the secret are never shown again, not even in the form.
        return (feedback(True, f"Contact point {made['name']} added ({made['target']})."),
                (version or 0) + 1, "", "", "", "")

    @access.callback(
        dash_app,
        Output(ids.ALERTS_CONTACT_FEEDBACK, "children", allow_duplicate=True),
        Output(ids.ALERTS_CONTACTS_VERSION, "data", allow_duplicate=True),
        Input(ids.ALERTS_CONTACT_TEST, "n_clicks"), Input(ids.ALERTS_CONTACT_DELETE, "n_clicks"),
        State(ids.ALERTS_CONTACTS_GRID, "selectedRows"),
        State(ids.ALERTS_CONTACTS_VERSION, "data"),
        roles=OWNERS,
        prevent_initial_call=True,
    )
    def on_contact_action(test_clicks, delete_clicks, selected, version):
        if not (test_clicks or delete_clicks):
            raise PreventUpdate
        if not selected:
            return feedback(False, "Choose a contact point in the list first."), no_update
        contact_id, name = int(selected[0]["id"]), selected[0]["name"]
        try:
            if ctx.triggered_id == ids.ALERTS_CONTACT_DELETE:
                service.delete_contact(engine(), actor(), contact_id)
                return feedback(True, f"Contact point {name} deleted."), (version or 0) + 1
            result = service.send_test_contact(engine(), state.current().settings, actor(),
                                               contact_id)
        except AlertError as error:
            return feedback(False, messages(error)), no_update
        return delivery_feedback(name, result), (version or 0) + 1


def delivery_feedback(name: str, result: Any) -> Any:
    """What a test sent to a contact point got back."""
    answer = f"HTTP {result.status_code}" if result.status_code else ""
    detail = ", ".join(filter(None, [answer, (result.response or "")[:200]]))
    verb = "Test delivered to" if result.ok else "Test to"
    tail = "" if result.ok else " failed"
    return feedback(result.ok, f"{verb} {name}{tail}" + (f" ({detail})." if detail else "."))


def _register_silences(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.ALERTS_SILENCES_GRID, "rowData"), Output(ids.ALERTS_SILENCE_RULE, "options"),
        Input(ids.ALERTS_SILENCES_VERSION, "data"), Input(ids.ALERTS_VERSION, "data"),
        roles=OWNERS,
    )
    def update_silences(_version, _rules_version):
        who = actor()
        names = {row.rule.id: row.rule.name for row in service.visible_rules(engine(), who)}
        rows = [silence_row(s, names) for s in service.visible_silences(engine(), who)]
        return rows, [{"label": name, "value": rule_id} for rule_id, name in names.items()]

    @access.callback(
        dash_app,
        Output(ids.ALERTS_SILENCE_RULE + "-group", "style"),
        Output(ids.ALERTS_SILENCE_MATCHERS + "-group", "style"),
        Output(ids.ALERTS_SILENCE_START + "-group", "style"),
        Input(ids.ALERTS_SILENCE_MODE, "value"),
        roles=OWNERS,
    )
    def update_silence_fields(mode):
        shown, hidden = {}, {"display": "none"}
        return (shown, hidden, hidden) if mode != "matchers" else (hidden, shown, shown)



def _register_silence_actions(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.ALERTS_SILENCE_FEEDBACK, "children"),
        Output(ids.ALERTS_SILENCES_VERSION, "data"),
        inputs={"clicks": Input(ids.ALERTS_SILENCE_ADD, "n_clicks")},
        state={"form": {
               "mode": State(ids.ALERTS_SILENCE_MODE, "value"),
               "rule_id": State(ids.ALERTS_SILENCE_RULE, "value"),
               "matchers": State(ids.ALERTS_SILENCE_MATCHERS, "value"),
               "start": State(ids.ALERTS_SILENCE_START, "value"),
               "end": State(ids.ALERTS_SILENCE_END, "value"),
               "comment": State(ids.ALERTS_SILENCE_COMMENT, "value")},
               "tz": State(ids.TZ_STORE, "data"),
               "version": State(ids.ALERTS_SILENCES_VERSION, "data")},
        roles=OWNERS,
        prevent_initial_call=True,
    )
    def on_add_silence(*, clicks, form, tz, version):
        if not clicks:
            raise PreventUpdate
        try:
            data = silence_data(form, tz)
            service.create_silence(engine(), actor(), data)
        except ValueError as error:
            return feedback(False, str(error)), no_update
        except AlertError as error:
            return feedback(False, messages(error)), no_update
        return feedback(True, "Silence added."), (version or 0) + 1

    @access.callback(
        dash_app,
        Output(ids.ALERTS_SILENCE_FEEDBACK, "children", allow_duplicate=True),
        Output(ids.ALERTS_SILENCES_VERSION, "data", allow_duplicate=True),
        Input(ids.ALERTS_SILENCE_DELETE, "n_clicks"),
        State(ids.ALERTS_SILENCES_GRID, "selectedRows"),
        State(ids.ALERTS_SILENCES_VERSION, "data"),
        roles=OWNERS,
        prevent_initial_call=True,
    )
    def on_delete_silence(clicks, selected, version):
        if not clicks:
            raise PreventUpdate
        if not selected:
            return feedback(False, "Choose a silence in the list first."), no_update
        try:
            service.delete_silence(engine(), actor(), int(selected[0]["id"]))
        except AlertError as error:
            return feedback(False, messages(error)), no_update
        return feedback(True, "Silence deleted."), (version or 0) + 1


def silence_data(form: dict[str, Any], tz: str | None) -> dict[str, Any]:
    """The silence the form (mode, rule_id, matchers, start, end, comment) describes, as
    create_silence takes it; ValueError for what the form itself can tell is wrong."""
    matching = form.get("mode") == "matchers"
    try:
        ends_at = local_time(form.get("end"), tz)
        starts_at = local_time(form.get("start"), tz) if matching else None
    except ValueError:
        raise ValueError("times must be like 2026-05-01 18:00") from None
    data: dict[str, Any] = {"ends_at": ends_at, "comment": form.get("comment") or None}
    if starts_at:
        data["starts_at"] = starts_at
    if matching:
        data["matchers"] = matchers_of(form.get("matchers"))
    elif form.get("rule_id") in (None, ""):
        raise ValueError("choose the rule to silence")
    else:
        data["rule_id"] = int(form["rule_id"])
    return data

