"""Market data ingestion: exchange sources, the normaliser, the batching writer, scheduling.

Ingest never imports Dash.
"""
