"""Build the JSON body Dash's renderer posts to /_dash-update-component, for tests."""

from __future__ import annotations

from typing import Any


def _wildcard(component_id: Any) -> bool:
    return isinstance(component_id, dict) and any(
        not isinstance(value, str | int | float | bool) for value in component_id.values())


def _dependency(dependency: dict[str, Any], value: Any) -> Any:
    if _wildcard(dependency["id"]):
        return []  # an ALL pattern that matches no component on the page
    return {"id": dependency["id"], "property": dependency["property"], "value": value}


def callback_body(callback_map: dict[str, Any], key: str,
                  values: dict[str, Any] | None = None,
                  changed: str | None = None) -> dict[str, Any]:
    """A body that triggers callback `key` with inputs and states from `values` (else None).

    `changed` is the "component.property" that fired (default: the first input).
    """
    entry = callback_map[key]
    values = values or {}
    outputs = entry["output"] if isinstance(entry["output"], list) else [entry["output"]]
    out = [[] if _wildcard(o.component_id) else
           {"id": o.component_id, "property": o.component_property.split("@")[0]}
           for o in outputs]
    name = lambda dep: f"{dep['id']}.{dep['property']}"  # noqa: E731
    inputs = [_dependency(dep, values.get(name(dep))) for dep in entry["inputs"]]
    return {
        "output": key,
        "outputs": out if isinstance(entry["output"], list) else out[0],
        "inputs": inputs,
        "state": [_dependency(dep, values.get(name(dep))) for dep in entry["state"]],
        "changedPropIds": [changed] if changed else [
            name(dep) for dep in entry["inputs"][:1] if not _wildcard(dep["id"])],
    }


def server_callbacks(callback_map: dict[str, Any]) -> list[str]:
    """Keys of the callbacks that run on the server (clientside ones never POST)."""
    return sorted(key for key, entry in callback_map.items() if "callback" in entry)
