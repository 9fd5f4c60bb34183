"""Every Flask route, every Dash page and every Dash callback, walked as anonymous, as each
role and as a kiosk device: each must answer what its access rule says. Routes and callbacks
are found by walking the app, so one added later without a rule fails here, by name."""

from __future__ import annotations

import pytest
from dash import page_registry
from dash._callback import GLOBAL_CALLBACK_MAP
from werkzeug.routing import Rule as UrlRule

from app import access
from app.access import ROLES, SCOPES
from app.auth import commands
from app.kiosk import devices
from tests.conftest import AuthActions, ensure_user
from tests.dash_calls import callback_body, server_callbacks

# "device": a wall screen signed in by its setup link (role kiosk, a device session).
WHO = ("anonymous", *ROLES, "device")
# Real files for the static routes; any other argument gets "x" (the rule is what matters).
SAMPLE_ARGUMENTS = {
    "vendor.static": {"filename": "css/bootstrap.min.css"},
    "_dash_assets.static": {"filename": "p2pdash.css"},
}
SKIPPED_METHODS = {"HEAD", "OPTIONS"}


class Walker:
    """Signed-in test clients per role, and a fresh one where a request would sign out."""

    def __init__(self, app, client_as) -> None:
        self.app = app
        self.client_as = client_as
        self.clients: dict[str, object] = {}

    def client(self, who: str, fresh: bool = False):
        if who == "anonymous":
            return self.app.test_client()
        if fresh or who not in self.clients:
            client = self.device() if who == "device" else self.client_as(who)
            client.get("/")  # a page load hands out the CSRF cookie
            if fresh:
                return client
            self.clients[who] = client
        return self.clients[who]

    def device(self):
        """A client signed in as a new kiosk device through its one-time setup link."""
        state = self.app.extensions["p2pdash"]
        name = f"screen-{len(self.clients)}-{id(object())}"
        _device, link = devices.create(state.engine, state.settings, "test", name, None)
        client = self.app.test_client()
        assert client.get(link[link.index("/kiosk/setup/"):]).status_code == 302
        return client

    def headers(self, who: str) -> dict[str, str]:
        if who == "anonymous":
            return {}
        return AuthActions(self.client(who)).dash_headers()


@pytest.fixture
def walker(app, client_as) -> Walker:
    return Walker(app, client_as)


def _url(rule: UrlRule) -> str:
    arguments = {name: "x" for name in rule.arguments}
    arguments.update(SAMPLE_ARGUMENTS.get(rule.endpoint, {}))
    return rule.build(arguments, append_unknown=False)[1]


def _login_redirect(response) -> bool:
    return response.status_code == 302 and response.location.startswith("/login?next=")


def _problem(rule: access.Rule, who: str, response, page: bool) -> str | None:
    """What is wrong with the answer `who` got under `rule`, or None."""
    status = response.status_code
    role = "kiosk" if who == "device" else who
    if rule.kind == "public":
        ok = status not in (401, 403) and not _login_redirect(response)
        return None if ok else "public, yet refused"
    if rule.kind == "api":
        return None if status == 401 else "an API route must want a key (401)"
    if who == "anonymous":
        ok = _login_redirect(response) if page else status == 401
        return None if ok else "anonymous must be sent to log in" if page else "expected 401"
    if rule.kind == "callbacks":
        return None if status == 403 else "a callback POST naming no callback must get 403"
    if rule.admits(role):
        return None if status not in (401, 403) and not _login_redirect(response) else \
            f"{who} is allowed, yet refused"
    return None if status == 403 else f"{who} is not allowed: expected 403"


def _walk_route(walker: Walker, rule: UrlRule, who: str) -> list[str]:
    declared = access.rule_for_endpoint(walker.app, rule.endpoint)
    if declared is None:
        return [f"{rule.endpoint} ({rule.rule}) has no access rule"]
    problems = []
    for method in sorted(rule.methods - SKIPPED_METHODS):
        client = walker.client(who, fresh=rule.endpoint == "auth.logout")
        url = _url(rule)
        response = client.open(url, method=method, json={} if method == "POST" else None)
        page = declared.kind == "pages"
        effective = declared
        if declared.kind == "pages" and who != "anonymous":
            effective = access.SIGNED_IN if url != "/" else _page_rule("/")
        problem = _problem(effective, who, response, page)
        if problem:
            problems.append(f"{method} {url} as {who}: {response.status_code}, {problem}")
    return problems


def _page_rule(path: str) -> access.Rule:
    page = next(page for page in page_registry.values() if page["path"] == path)
    return access.Rule("user", frozenset(page["roles"]))


@pytest.mark.parametrize("who", WHO)
def test_every_route_answers_as_its_rule_says(app, walker, who):
    problems = []
    for rule in app.url_map.iter_rules():
        problems += _walk_route(walker, rule, who)
    assert problems == []


@pytest.mark.parametrize("who", WHO)
def test_every_dash_page_checks_the_role(app, walker, who):
    walker.client("admin").get("/")  # the first request registers Dash's pages
    problems = []
    for page in page_registry.values():
        assert page.get("roles"), f"page {page['path']} declares no roles"
        response = walker.client(who).get(page["path"])
        problem = _problem(_page_rule(page["path"]), who, response, page=True)
        if problem:
            problems.append(f"GET {page['path']} as {who}: {response.status_code}, {problem}")
    assert problems == []


@pytest.mark.parametrize("who", WHO)
def test_every_dash_callback_answers_as_its_rule_says(app, dash_app, walker, who):
    # Callbacks registered with dash.callback wait in a global map until the first request.
    callback_map = {**GLOBAL_CALLBACK_MAP, **dash_app.callback_map}
    walker.client("admin").get("/")  # the first request also registers the pages router
    callback_map.update(dash_app.callback_map)
    problems = []
    for key in server_callbacks(callback_map):
        rule = access.rule_for_callback(app, key)
        if rule is None:
            problems.append(f"callback {key} has no access rule")
            continue
        body = callback_body(callback_map, key)
        response = walker.client(who).post("/_dash-update-component", json=body,
                                           headers=walker.headers(who))
        problem = _problem(rule, who, response, page=False)
        if problem:
            problems.append(f"callback {key} as {who}: {response.status_code}, {problem}")
    assert problems == []


def test_a_callback_without_a_rule_is_refused_even_to_admins(app, dash_app, client_as):
    from dash import Input, Output

    dash_app.callback(Output("nowhere", "children"), Input("nothing", "value"))(lambda _: "x")
    admin = client_as("admin")
    body = callback_body(dash_app.callback_map, "nowhere.children")
    response = admin.post("/_dash-update-component", json=body,
                          headers=AuthActions(admin).dash_headers())
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_a_route_without_a_rule_is_refused(settings):
    from app import create_app

    server = create_app(settings)
    server.add_url_rule("/undeclared", "undeclared", lambda: "secret")
    ensure_user(server, "admin")
    admin = server.test_client()
    assert AuthActions(admin).login("admin", "correct-horse-admin-battery").status_code == 302
    assert admin.get("/undeclared").status_code == 403
    assert server.test_client().get("/undeclared").status_code == 401


@pytest.mark.parametrize("scope", SCOPES)
def test_every_api_route_checks_the_key_scope(app, scope):
    ensure_user(app, "admin")
    engine = app.extensions["p2pdash"].engine
    _row, key = commands.create_key(engine, "test", "admin", f"only {scope}", [scope])
    client = app.test_client()
    problems = []
    for rule in app.url_map.iter_rules():
        declared = access.rule_for_endpoint(app, rule.endpoint)
        if declared is None or declared.kind != "api":
            continue
        for method in sorted(rule.methods - SKIPPED_METHODS):
            url = _url(rule)
            response = client.open(url, method=method, headers={"X-API-Key": key})
            allowed = declared.grants([scope])
            wrong = response.status_code in (401, 403) if allowed else \
                response.status_code != 403
            if wrong:
                problems.append(f"{method} {url} with a {scope} key: {response.status_code}")
    assert problems == []


@pytest.mark.parametrize("wrong", [{"x": [1, {"y": None}]}, [10**30, -1, "z" * 5000]])
def test_no_callback_answers_500_to_values_of_the_wrong_type(app, dash_app, walker, wrong):
    callback_map = {**GLOBAL_CALLBACK_MAP, **dash_app.callback_map}
    walker.client("admin").get("/")
    callback_map.update(dash_app.callback_map)
    failures = []
    for key in server_callbacks(callback_map):
        entry = callback_map[key]
        values = {f"{dep['id']}.{dep['property']}": wrong
                  for dep in entry["inputs"] + entry["state"]}
        body = callback_body(callback_map, key, values)
        response = walker.client("admin").post("/_dash-update-component", json=body,
                                               headers=walker.headers("admin"))
        if response.status_code >= 500:
            failures.append(f"{key}: {response.status_code}")
    assert failures == []


def test_no_callback_answers_500_to_outputs_of_the_wrong_shape(app, dash_app, walker):
    """A crafted body listing one output's spec for a single output (or one spec for many)
    made Dash's own check of the return value fail with a 500."""
    callback_map = {**GLOBAL_CALLBACK_MAP, **dash_app.callback_map}
    walker.client("admin").get("/")
    callback_map.update(dash_app.callback_map)
    failures = []
    for key in server_callbacks(callback_map):
        body = callback_body(callback_map, key)
        outputs = body["outputs"]
        body["outputs"] = outputs[0] if isinstance(outputs, list) and outputs else [outputs]
        response = walker.client("admin").post("/_dash-update-component", json=body,
                                               headers=walker.headers("admin"))
        if response.status_code >= 500:
            failures.append(f"{key}: {response.status_code}")
    assert failures == []
