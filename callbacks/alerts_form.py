"""Callbacks of the rule form: which fields show, loading a rule, the preview of the unsaved
rule, and save, delete and send test as the signed-in user (who may only touch their own
rules: the service answers NotFound for another's)."""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from app import access, state
from app.alerts import service
from app.alerts.conditions import CONDITIONS
from app.alerts.metrics import METRICS
from app.alerts.preview import WIDTHS, preview
from app.alerts.rules import Catalog, RuleInvalid, parse_rule
from app.alerts.service import OWNERS, Actor, AlertError, NotFound
from callbacks import common
from callbacks.admin import feedback
from callbacks.alerts import actor, engine, threshold_lines
from db import views
from db.alert_model import Rule
from layouts import ids
from layouts.alerts_form import (
    DEFAULT_CONDITION,
    DEFAULT_METRIC,
    ERROR_SLOTS,
    FORM_FIELDS,
    SPANS,
)
from layouts.controls import market_keys, p2p_markets, spot_symbols
from layouts.figures import empty_figure, preview_figure

SECONDS_FIELDS = ("for_seconds", "keep_firing_for_seconds", "repeat_seconds", "nodata_seconds")
LABEL = re.compile(r"^\s*([^=\s]+)\s*=\s*(.*?)\s*$")
RULE_FIELDS = {item.name for item in fields(Rule)}
HIDDEN = {"display": "none"}


def _text(value: Any) -> str | None:
    """A form text as the rule JSON takes it: stripped, None when empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def visible_parts(metric: str | None, condition: str | None) -> dict[str, bool]:
    """Which optional parts of the form the metric and the condition need."""
    spec = METRICS.get(metric or "")
    needs = spec.needs if spec else ()
    rule_condition = CONDITIONS.get(condition or "")
    band = bool(rule_condition and rule_condition.band)
    window = bool(rule_condition and rule_condition.window)
    return {"market": "market" in needs or "market|symbol" in needs,
            "other": "other" in needs,
            "symbol": "symbol" in needs or "market|symbol" in needs,
            "window": "window_seconds" in needs or window,
            "filters": bool(spec and spec.filters), "threshold": not band, "band-low": band,
            "band-high": band, "direction": window}


def filters_of(values: dict[str, Any]) -> dict[str, Any]:
    """The offer filters of the form (min completion typed in %, stored as a fraction)."""
    out: dict[str, Any] = {}
    if _text(values.get("amount")):
        out["amount"] = _text(values["amount"])
    if values.get("payment"):
        out["payment"] = list(values["payment"])
    if values.get("merchant_only"):
        out["merchant_only"] = True
    completion = _text(values.get("completion_pct"))
    if completion:
        try:
            out["min_completion"] = format(Decimal(completion) / 100, "f")
        except InvalidOperation:
            out["min_completion"] = completion  # the rule check names it
    return out


def labels_of(severity: str | None, text: str | None) -> tuple[dict[str, str], list[dict]]:
    """The severity and 'key=value, ...' labels; errors for items that are neither."""
    labels, errors = ({"severity": severity} if severity else {}), []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        match = LABEL.match(item)
        if match:
            labels[match[1]] = match[2]
        else:
            errors.append({"field": "labels", "message": f"{item.strip()!r} is not key=value"})
    return labels, errors


def _subject_fields(values: dict[str, Any], parts: dict[str, bool]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for part in ("market", "other", "symbol"):
        if parts[part]:
            data[part] = _text(values.get(part))
    window = _text(values.get("window_seconds"))
    if parts["window"] and window:
        data["window_seconds"] = int(window) if window.isdigit() else window
    return data


def rule_data(values: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The rule JSON the form describes, and the errors found before the rule check."""
    parts = visible_parts(values.get("metric"), values.get("condition"))
    data: dict[str, Any] = {"name": _text(values.get("name")), "metric": values.get("metric"),
                            "condition": values.get("condition"),
                            **_subject_fields(values, parts),
                            "filters": filters_of(values) if parts["filters"] else {}}
    if parts["band-low"]:
        data.update(low=_text(values.get("low")), high=_text(values.get("high")))
    else:
        data["threshold"] = _text(values.get("threshold"))
    if parts["direction"]:
        data["direction"] = values.get("direction") or "either"
    for key in SECONDS_FIELDS:
        data[key] = _text(values.get(key))
    data["nodata_state"] = values.get("nodata_state") or None
    data["error_state"] = values.get("error_state") or None
    data["labels"], errors = labels_of(values.get("severity"), values.get("labels"))
    data["note"] = _text(values.get("note"))
    data["notify"] = [int(item) for item in values.get("notify") or []]
    data["enabled"] = bool(values.get("enabled"))
    return data, errors


def blank_values() -> dict[str, Any]:
    """The form of a new rule."""
    markets, symbols = market_keys(), spot_symbols()
    return {"name": "", "metric": DEFAULT_METRIC, "market": markets[0] if markets else "",
            "other": markets[1] if len(markets) > 1 else "", "symbol": "",
            "window_seconds": "3600", "amount": "", "payment": [], "merchant_only": False,
            "completion_pct": "", "condition": DEFAULT_CONDITION, "threshold": "", "low": "",
            "high": "", "direction": "either", "for_seconds": "",
            "keep_firing_for_seconds": "", "repeat_seconds": "", "nodata_seconds": "",
            "nodata_state": "nodata", "error_state": "error", "severity": "warning",
            "labels": "", "note": "", "notify": [], "enabled": True,
            **({"symbol": symbols[0]} if symbols and not markets else {})}


def _percent(fraction: str | None) -> str:
    return "" if fraction is None else format((Decimal(fraction) * 100).normalize(), "f")


def form_values(rule: dict[str, Any]) -> dict[str, Any]:
    """A stored rule (its JSON) as the form shows it."""
    values = blank_values()
    filters = rule.get("filters") or {}
    labels = dict(rule.get("labels") or {})
    values.update({key: "" if rule.get(key) is None else str(rule[key]) for key in (
        "name", "market", "other", "symbol", "threshold", "low", "high", "note",
        *SECONDS_FIELDS) if key in rule})
    values.update(
        metric=rule["metric"], condition=rule["condition"],
        window_seconds=str(rule.get("window_seconds") or values["window_seconds"]),
        amount=filters.get("amount") or "", payment=list(filters.get("payment") or []),
        merchant_only=bool(filters.get("merchant_only")),
        completion_pct=_percent(filters.get("min_completion")),
        direction=rule.get("direction") or "either", nodata_state=rule["nodata_state"],
        error_state=rule["error_state"], severity=labels.pop("severity", ""),
        labels=", ".join(f"{key}={value}" for key, value in sorted(labels.items())),
        notify=list(rule.get("notify") or []), enabled=bool(rule.get("enabled", True)))
    return values


def slot_of(field: str) -> str:
    """The error slot of a rule field ('filters.amount' -> 'filters-amount')."""
    slot = field.replace(".", "-")
    if slot in ERROR_SLOTS:
        return slot
    head = field.split(".", 1)[0]
    return head if head in ERROR_SLOTS else "form"


def slot_messages(errors: list[dict[str, str]]) -> dict[str, str]:
    """Each slot's messages, joined."""
    out: dict[str, list[str]] = {}
    for error in errors:
        message = error["message"]
        if error["field"] == "filters.min_completion" and "0 to 1" in message:
            message = "must be a percentage from 0 to 100"
        slot = slot_of(error["field"])
        prefix = f"{error['field']}: " if slot == "form" else ""
        out.setdefault(slot, []).append(prefix + message)
    return {slot: "; ".join(texts) for slot, texts in out.items()}


def draft_rule(values: dict[str, Any], who: Actor) -> Rule:
    """The unsaved rule of the form (id 0), or RuleInvalid."""
    data, errors = rule_data(values)
    data["name"] = data["name"] or "preview"
    data["notify"] = []
    try:
        draft = parse_rule(data, Catalog.of(state.current().settings))
    except RuleInvalid as invalid:
        raise RuleInvalid(errors + invalid.errors) from None
    if errors:
        raise RuleInvalid(errors)
    columns = {key: value for key, value in draft.columns.items() if key in RULE_FIELDS}
    return Rule(id=0, user_id=who.user_id, owner=who.username, **columns)


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def fired_sentence(count: int, span: str) -> str:
    """'Would have fired 3 times in the last 24 h'."""
    return f"Would have fired {count} time{'' if count == 1 else 's'} in the {SPANS[span]}"


def preview_view(values: dict[str, Any], span: str, who: Actor, *, tz: str,
                 dark: bool) -> tuple[dict[str, Any], Any]:
    """The preview figure of the form's rule, and the sentence above it."""
    try:
        rule = draft_rule(values, who)
    except RuleInvalid as invalid:
        problems = "; ".join(f"{e['field']} {e['message']}" for e in invalid.errors[:3])
        return (empty_figure("Complete the rule to preview it.", dark),
                html.Span(f"The preview needs a valid rule: {problems}.",
                          className="text-body-secondary"))
    result = preview(engine(), rule, span)
    metric = METRICS[rule.metric]
    if not result.samples:
        message = f"No stored {rule.metric} data of {rule.subject.describe()} in the {SPANS[span]}."
        return empty_figure(message, dark), html.Span(message, className="text-body-secondary")
    samples = {"t": [_ms(sample.at) for sample in result.samples],
               "value": [float(sample.value) for sample in result.samples]}
    periods = [{"start": _ms(start), "end": _ms(end), "label": "would alert"}
               for start, end in result.periods]
    figure = preview_figure(samples, name=rule.metric, unit=metric.unit, tz=tz, dark=dark,
                            lines=threshold_lines(rule), firings=[_ms(m) for m in result.firings],
                            periods=periods, now_ms=common.now_ms(),
                            bucket_ms=int(WIDTHS[span].total_seconds() * 1000),
                            revision=f"{rule.metric}|{rule.subject}|{span}")
    return figure, html.B(fired_sentence(result.count, span), id=ids.ALERTS_PREVIEW_TEXT + "-n")


def form_errors(values: dict[str, Any]) -> list[dict[str, str]]:
    """Every bad field of the form, as a save would report them (contact points aside)."""
    data, errors = rule_data(values)
    try:
        parse_rule(data, Catalog.of(state.current().settings))
    except RuleInvalid as invalid:
        errors += invalid.errors
    return errors


def save(editing_id: int | None, values: dict[str, Any],
         who: Actor) -> tuple[int | None, list[dict[str, str]]]:
    """Create or update the rule of the form; its id, or the bad fields (nothing saved)."""
    data, errors = rule_data(values)
    if errors:
        return None, form_errors(values)
    settings = state.current().settings
    try:
        if editing_id:
            row = service.update_rule(engine(), settings, who, editing_id, data)
        else:
            row = service.create_rule(engine(), settings, who, data)
    except NotFound:
        return None, [{"field": "form", "message": "no such alert rule (deleted, or not yours)"}]
    except AlertError as error:
        return None, error.errors or [{"field": "form", "message": error.message}]
    return row.rule.id, []


def not_saved(errors: list[dict[str, str]]) -> str:
    """Why nothing was saved, in one line."""
    slots = {slot_of(error["field"]) for error in errors}
    if slots == {"form"}:
        return "Not saved: " + "; ".join(error["message"] for error in errors)
    return f"Not saved: {len(slots)} field{'s' if len(slots) != 1 else ''} to fix."


def test_results(results: list[tuple[str, Any]]) -> dbc.Alert:
    """What each contact point answered to a rule's test."""
    items = [html.Li(f"{name}: " + ("delivered" if result.ok else "failed") +
                     (f" (HTTP {result.status_code})" if result.status_code else "") +
                     ("" if result.ok else f": {(result.response or '')[:200]}"))
             for name, result in results]
    ok = all(result.ok for _name, result in results)
    return dbc.Alert([html.Div("Test sent:"), html.Ul(items, className="mb-0")],
                     color="success" if ok else "danger", dismissable=True, className="py-2 mb-0")


def loaded_rule(rule_id: Any) -> tuple[dict[str, Any] | None, str]:
    """The form values and title of one of the user's rules (None when it is not theirs),
    or of a new rule."""
    if not rule_id:
        return blank_values(), "New rule"
    try:
        row = service.rule_for(engine(), actor(), int(rule_id))
    except AlertError:
        return None, ""
    return form_values(service.editable_json(row)), f"Rule {row.rule.id}: {row.rule.name}"


def _form_values(values: dict[str, Any]) -> list[Any]:
    return [values[key] for key in FORM_FIELDS]


def _form(kind: type) -> dict[str, Any]:
    return {key: kind(component, prop) for key, (component, prop) in FORM_FIELDS.items()}


def register(dash_app: Dash) -> None:
    """The rule form's callbacks."""
    _register_fields(dash_app)
    _register_loading(dash_app)
    _register_preview(dash_app)
    _register_save(dash_app)
    _register_delete_and_test(dash_app)


def _register_fields(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output({"type": ids.ALERTS_GROUP, "part": ALL}, "style"),
        Input(ids.ALERTS_FORM_METRIC, "value"), Input(ids.ALERTS_FORM_CONDITION, "value"),
        roles=OWNERS,
    )
    def update_parts(metric, condition):
        shown = visible_parts(metric, condition)
        return [{} if shown.get(item["id"]["part"], True) else HIDDEN
                for item in ctx.outputs_list]

    @access.callback(
        dash_app,
        Output(ids.ALERTS_FORM_NOTIFY, "options"), Output(ids.ALERTS_FORM_PAYMENT, "options"),
        Input(ids.ALERTS_CONTACTS_VERSION, "data"), Input(ids.ALERTS_EDITING, "data"),
        State(ids.ALERTS_FORM_PAYMENT, "value"),
        roles=OWNERS,
    )
    def update_choices(_version, _editing, payment):
        contacts = [{"label": f"{c['name']} ({c['kind']})", "value": c["id"]}
                    for c in service.visible_contacts(engine(), actor())]
        exchanges = tuple(sorted({market.exchange for market in p2p_markets()}))
        codes = views.p2p_method_codes(exchanges) if exchanges else []
        return contacts, sorted(set(codes) | set(payment or []))

    @access.callback(
        dash_app,
        Output({"type": ids.ALERTS_FIELD_ERROR, "field": ALL}, "children"),
        Input(ids.ALERTS_FORM_ERRORS, "data"),
        roles=OWNERS,
    )
    def update_errors(errors):
        found = slot_messages(errors or [])
        return [found.get(item["id"]["field"], "") for item in ctx.outputs_list]


def _register_loading(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.ALERTS_EDITING, "data"), Output(ids.ALERTS_HISTORY_RULE, "value"),
        Output(ids.ALERTS_GRID, "selectedRows"),
        Input(ids.ALERTS_GRID, "cellClicked"), Input(ids.ALERTS_NEW, "n_clicks"),
        roles=OWNERS,
        prevent_initial_call=True,
    )
    def on_choose_rule(cell, new_clicks):
        if ctx.triggered_id == ids.ALERTS_NEW and new_clicks:
            return {"id": None, "open": True}, None, []
        row_id = (cell or {}).get("rowId")
        if not row_id or not str(row_id).isdigit():
            raise PreventUpdate
        return {"id": int(row_id), "open": True}, int(row_id), no_update

    @access.callback(
        dash_app,
        output=[*(Output(component, prop) for component, prop in FORM_FIELDS.values()),
                Output(ids.ALERTS_EDITOR, "style"), Output(ids.ALERTS_EDITOR_TITLE, "children"),
                Output(ids.ALERTS_FORM_ERRORS, "data"),
                Output(ids.ALERTS_FORM_FEEDBACK, "children")],
        inputs=[Input(ids.ALERTS_EDITING, "data")],
        roles=OWNERS,
    )
    def fill_form(editing):
        editing = editing or {}
        if not editing.get("open"):
            return [*[no_update] * len(FORM_FIELDS), HIDDEN, no_update, [], None]
        notice = editing.get("notice")
        note = feedback(True, notice) if notice else None
        values, title = loaded_rule(editing.get("id"))
        if values is None:
            values, title = blank_values(), "New rule"
            note = feedback(False, f"No rule {editing['id']} of yours exists: a new one.")
        return [*_form_values(values), {}, title, [], note]


def _register_preview(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.ALERTS_PREVIEW_GRAPH, "figure"), Output(ids.ALERTS_PREVIEW_TEXT, "children"),
        Output(ids.ALERTS_FORM_ERRORS, "data", allow_duplicate=True),
        Output(ids.ALERTS_FORM_FEEDBACK, "children", allow_duplicate=True),
        inputs={"values": _form(Input), "span": Input(ids.ALERTS_PREVIEW_SPAN, "value"),
                "tz": Input(ids.TZ_STORE, "data"), "theme": Input(ids.THEME_STORE, "data"),
                "editing": Input(ids.ALERTS_EDITING, "data")},
        state={"shown": State(ids.ALERTS_FORM_ERRORS, "data")},
        roles=OWNERS,
        prevent_initial_call=True,
    )
    def update_preview(*, values, span, tz, theme, editing, shown):
        if not (editing or {}).get("open"):
            raise PreventUpdate
        figure, sentence = preview_view(values, span if span in SPANS else "1d", actor(),
                                        tz=common.tz_name(tz), dark=common.is_dark(theme))
        if not shown:
            return figure, sentence, no_update, no_update
        # After a failed save the errors follow the edits: each goes once its field is right.
        errors = form_errors(values)
        return figure, sentence, errors, no_update if errors else None


def _register_save(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.ALERTS_EDITING, "data", allow_duplicate=True),
        Output(ids.ALERTS_VERSION, "data"),
        Output(ids.ALERTS_FORM_ERRORS, "data", allow_duplicate=True),
        Output(ids.ALERTS_FORM_FEEDBACK, "children", allow_duplicate=True),
        inputs={"clicks": Input(ids.ALERTS_SAVE, "n_clicks")},
        state={"editing": State(ids.ALERTS_EDITING, "data"),
               "version": State(ids.ALERTS_VERSION, "data"), "values": _form(State)},
        roles=OWNERS,
        prevent_initial_call=True,
    )
    def on_save(*, clicks, editing, version, values):
        if not clicks:
            raise PreventUpdate
        editing_id = (editing or {}).get("id")
        rule_id, errors = save(int(editing_id) if editing_id else None, values, actor())
        if errors:
            return no_update, no_update, errors, feedback(False, not_saved(errors))
        notice = f"Rule {rule_id} saved at {datetime.now(UTC):%H:%M:%S} UTC."
        return ({"id": rule_id, "open": True, "notice": notice}, (version or 0) + 1, [],
                no_update)


def _register_delete_and_test(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.ALERTS_EDITING, "data", allow_duplicate=True),
        Output(ids.ALERTS_VERSION, "data", allow_duplicate=True),
        Output(ids.ALERTS_FORM_FEEDBACK, "children", allow_duplicate=True),
        Input(ids.ALERTS_DELETE, "n_clicks"),
        State(ids.ALERTS_EDITING, "data"), State(ids.ALERTS_VERSION, "data"),
        roles=OWNERS,
        prevent_initial_call=True,
    )
    def on_delete(clicks, editing, version):
        if not clicks:
            raise PreventUpdate
        rule_id = (editing or {}).get("id")
        if not rule_id:
            return no_update, no_update, feedback(False, "This rule is not saved yet.")
        try:
            service.delete_rule(engine(), actor(), int(rule_id))
        except AlertError as error:
            return no_update, no_update, feedback(False, error.message)
        return ({"id": None, "open": True, "notice": f"Rule {rule_id} deleted."},
                (version or 0) + 1, no_update)

    @access.callback(
        dash_app,
        Output(ids.ALERTS_FORM_FEEDBACK, "children", allow_duplicate=True),
        Input(ids.ALERTS_TEST, "n_clicks"),
        State(ids.ALERTS_EDITING, "data"),
        roles=OWNERS,
        prevent_initial_call=True,
    )
    def on_test(clicks, editing):
        if not clicks:
            raise PreventUpdate
        rule_id = (editing or {}).get("id")
        if not rule_id:
            return feedback(False, "Save the rule first, then send a test.")
        try:
            results = service.send_test_rule(engine(), state.current().settings, actor(),
                                             int(rule_id))
        except AlertError as error:
            return feedback(False, error.message)
        return test_results(results)
