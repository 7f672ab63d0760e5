"""The airlock: the only way out of the TRE (export requests, server-side checks, review,
release with a disclosure record)."""
