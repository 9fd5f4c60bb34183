"""PostgreSQL advisory lock keys: one constant per purpose, the same in every p2pdash process."""

# Serialises schema migrations when several processes start at once.
MIGRATION_LOCK = 0x70327064
# Held, on a dedicated connection, by the one process that runs ingestion (the leader).
INGEST_LEADER_LOCK = 0x70327065
