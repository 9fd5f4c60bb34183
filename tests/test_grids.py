"""The grids' rules without a browser: column definitions, heights that fit the rows, and the
spread page's adverts known by their key, so a clicked cell finds its run."""

from __future__ import annotations

from callbacks.spread import advert_rows, advert_run
from layouts import grids, ids
from layouts.overview import MARKET_COLUMNS, data_table
from layouts.spread import ADVERT_PAGE_SIZE, adverts_table

ADVERT = {"side": "bid", "offer_id": "123", "price": 1150.5, "available": 10.0,
          "min_fiat": 1000.0, "max_fiat": 50000.0, "payment_methods": ["mercadopago"],
          "is_merchant": True, "advertiser_name": None, "advertiser_id": "u7",
          "month_finish_rate": 0.987, "month_orders": 42, "run_id": 9, "captured_at": 1}


def test_overview_numbers_are_right_aligned_and_formatted_text_is_not():
    columns = {column["field"]: column for column in MARKET_COLUMNS}
    assert columns["best_ask"]["type"] == "rightAligned"
    assert columns["best_ask"]["cellDataType"] == "number"
    assert "d3.format(',.6~f')" in columns["best_ask"]["valueFormatter"]["function"]
    assert "d3.format('+.3f')" in columns["change"]["valueFormatter"]["function"]
    assert "type" not in columns["market"] and columns["market"]["cellDataType"] == "text"


def test_overview_grids_update_rows_in_place_and_spread_adverts_page_by_twenty():
    markets = data_table(ids.OVERVIEW_MARKETS_TABLE, MARKET_COLUMNS)
    assert markets.getRowId == "params.data.market" and markets.rowData == []
    assert markets.dashGridOptions["theme"] == grids.THEME
    adverts = adverts_table()
    assert adverts.getRowId == "params.data.key"
    assert adverts.dashGridOptions["paginationPageSize"] == ADVERT_PAGE_SIZE == 20
    assert adverts.defaultColDef["floatingFilter"] and adverts.defaultColDef["sortable"]


def test_a_grid_fits_its_rows_then_scrolls():
    three = int(grids.fitted_height(3)["height"].removesuffix("px"))
    assert three == grids.HEADER_HEIGHT + 3 * grids.ROW_HEIGHT + grids.FRAME
    assert grids.fitted_height(600) == grids.fitted_height(grids.VISIBLE_ROWS)
    assert grids.fitted_height(0) == grids.fitted_height(2), "room for 'no rows'"


def test_a_clicked_spread_advert_cell_finds_the_run_of_its_row():
    rows = advert_rows([ADVERT, {**ADVERT, "side": "ask", "run_id": 8}])
    assert [row["key"] for row in rows] == ["bid:123", "ask:123"]
    assert rows[0]["completion"] == 98.7 and rows[0]["advertiser"] == "u7"
    assert advert_run({"rowId": "ask:123", "colId": "price", "timestamp": 5}, rows) == 8
    assert advert_run({"rowId": "bid:999"}, rows) is None, "gone since the click"
    assert advert_run(None, rows) is None and advert_run({"rowId": "bid:123"}, None) is None
