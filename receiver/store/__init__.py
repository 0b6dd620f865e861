"""The durable store: the SQLite queue, outbox and incident records."""
