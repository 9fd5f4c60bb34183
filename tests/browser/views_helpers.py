"""Browser helpers for the views' tests: read a chart as Plotly holds it, read and drive an
AG Grid, drive controls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select

from layouts import ids
from tests.spot_support import wait_until

# One column's cells of an AG Grid's drawn rows, in row order: the grid places rows by their
# row-index (the DOM order is not the sorted order), and a row a refresh removed may linger a
# moment, faded out. Texts when arguments[2], else the cells.
GRID_CELLS = """
const rows = document.querySelectorAll('#' + arguments[0] + ' .ag-center-cols-container .ag-row');
return [...rows].filter(row => !row.classList.contains('ag-opacity-zero'))
    .sort((a, b) => Number(a.getAttribute('row-index')) - Number(b.getAttribute('row-index')))
    .map(row => row.querySelector('.ag-cell[col-id="' + arguments[1] + '"]'))
    .map(cell => arguments[2] ? (cell ? cell.textContent : null) : cell);
"""
PLOT = "return (document.querySelector('#{id} .js-plotly-plot') || {{}}).{what} || null;"


def traces(dash_duo, graph_id: str) -> list[dict[str, Any]]:
    """The traces Plotly draws in a graph now (type, name, x, y, ...)."""
    return dash_duo.driver.execute_script(PLOT.format(id=graph_id, what="data")) or []


def layout(dash_duo, graph_id: str) -> dict[str, Any]:
    """The layout Plotly holds for a graph now (ranges after zoom included)."""
    return dash_duo.driver.execute_script(PLOT.format(id=graph_id, what="layout")) or {}


def wait_traces(dash_duo, graph_id: str, check: Callable[[list[dict]], bool],
                timeout: float = 30, message: str = "the chart") -> list[dict[str, Any]]:
    """Wait until the graph's traces pass `check`; return them."""
    found: list[list[dict]] = []

    def ready() -> bool:
        found[:] = [traces(dash_duo, graph_id)]
        return bool(found[0]) and check(found[0])

    wait_until(ready, timeout=timeout, interval=0.25, message=message)
    return found[0]


def zoom_to(dash_duo, graph_id: str, x_range: list) -> None:
    """Zoom a chart's x-axis as a user's drag would (a relayout)."""
    dash_duo.driver.execute_script(
        "Plotly.relayout(document.querySelector(arguments[0]), {'xaxis.range': arguments[1]});",
        f"#{graph_id} .js-plotly-plot", x_range)


def click(dash_duo, element) -> None:
    """Scroll an element to the middle of the window, then click it."""
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def click_point(dash_duo, graph_id: str, trace: int, index: int) -> None:
    """Click a point of a chart as Plotly reports it (its plotly_click event)."""
    dash_duo.driver.execute_script("""
        const gd = document.querySelector(arguments[0]);
        const data = gd.data[arguments[1]];
        const i = arguments[2] < 0 ? data.x.length + arguments[2] : arguments[2];
        gd.emit('plotly_click', {points: [{curveNumber: arguments[1], pointNumber: i,
            pointIndex: i, x: data.x[i], y: data.y[i], customdata: data.customdata[i],
            data: data, fullData: gd._fullData[arguments[1]]}]});
    """, f"#{graph_id} .js-plotly-plot", trace, index)


def column(dash_duo, grid_id: str, name: str) -> list[str]:
    """The texts of one column of a grid, top to bottom, as drawn (the rows in view, or of
    the page shown)."""
    return dash_duo.driver.execute_script(GRID_CELLS, grid_id, name, True)


def cells(dash_duo, grid_id: str, name: str) -> list:
    """The cells of one column of a grid, top to bottom, as drawn."""
    return dash_duo.driver.execute_script(GRID_CELLS, grid_id, name, False)


def header(dash_duo, grid_id: str, name: str):
    """The header cell of a grid's column (its aria-sort says how the grid is sorted)."""
    return dash_duo.find_element(f"#{grid_id} .ag-header-cell[col-id={name}]")


def sort_by(dash_duo, grid_id: str, name: str) -> None:
    """Click a column's header: ascending, then descending, then unsorted (a click event, as
    a live refresh may shift the page under a pointer)."""
    label = dash_duo.find_element(
        f"#{grid_id} .ag-header-cell[col-id={name}] .ag-header-cell-label")
    dash_duo.driver.execute_script("arguments[0].click();", label)


def filter_by(dash_duo, grid_id: str, name: str, text: str) -> None:
    """Type into a column's filter under its header (the grid filters as one types)."""
    dash_duo.find_element(f"#{grid_id} .ag-floating-filter[col-id={name}] input"
                          ).send_keys(text)


def choose(dash_duo, component_id: str, value: str) -> None:
    """Pick a value in a dbc.Select."""
    Select(dash_duo.find_element(f"#{component_id}")).select_by_value(value)


def pick(dash_duo, selector: str, value: str, timeout: float = 20) -> None:
    """Pick the option labelled `value` of a dcc.Dropdown, as dash_duo.select_dcc_dropdown
    does, again until it was there to click: on a busy machine the menu opens before its
    options are drawn, and dash's helper then only logs and returns."""
    def picked() -> bool:
        dash_duo.find_element(selector).click()
        menu = dash_duo.find_element(".dash-dropdown-options")
        for option in menu.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option"):
            if option.text == value:
                option.click()
                return True
        # Closed, so that the next click opens it afresh.
        ActionChains(dash_duo.driver).send_keys(Keys.ESCAPE).perform()
        return False

    wait_until(picked, timeout=timeout, interval=0.5, message=f"option {value!r} of {selector}")


def click_option(dash_duo, component_id: str, value: str) -> None:
    """Click the toggle button of a dbc.RadioItems button group."""
    dash_duo.find_element(f"label[for='_dbcprivate_radioitems_{component_id}_input_{value}']"
                          ).click()


def url_query(dash_duo) -> str:
    """The query string of the address bar."""
    return dash_duo.driver.execute_script("return window.location.search;")


def set_live_refresh(dash_duo, seconds: str) -> None:
    """Choose the live refresh period in the navbar."""
    choose(dash_duo, ids.REFRESH_SELECT, seconds)


class CallbackCounter:
    """Counts the callback POSTs that update a component, as the server answers them."""

    def __init__(self, app, output_id: str) -> None:
        self.count = 0
        self.patches = 0
        needle = f'"{output_id}'.encode()

        @app.after_request
        def _count(response):
            from flask import request

            if request.path == "/_dash-update-component" and needle in request.get_data():
                self.count += 1
                self.patches += b"__dash_patch_update" in response.get_data()
            return response

    def wait_for_more(self, than: int, timeout: float = 30) -> None:
        """Wait until more than `than` updates were answered."""
        wait_until(lambda: self.count > than, timeout=timeout, message="live refreshes")
