"""Read the ledger's records with their positions, for `mrr ledger tail|get|customer`.

Reads the configured ledger and nothing else (no projection, no consumer group, no commit).
`sources` opens it and reads records by partition and offset; `lookups` finds the records a
command asks for (the latest, one event id, one customer's). aiokafka, SQLAlchemy and the event
codec are imported inside functions, so importing this package stays cheap (`mrr --help`).
"""
