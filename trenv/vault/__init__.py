"""Data custody: schema validation, ingest, pseudonyms, linkage, publication.

Everything here is pure data handling on paths and settings; the CLI registers the results in
the dataset registry and writes the audit events.
"""
