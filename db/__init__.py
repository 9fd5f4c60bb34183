"""Data access: engine, schema, migrations, the embedded cluster and the query functions."""
