"""The egress meter: bytes sent from a notebook server to the researcher's browser.

The browser is outside the TRE, so what reaches it is counted per user and UTC clock hour
(text and images apart) and uploads per user and UTC day; past a warning level an audit
event is written, past a hard level output is withheld until the hour ends (docs/lab.md,
"The egress meter").

- :mod:`trenv.meter.wire`: the report schema between the container and the web API, and
  the audit actions; imported by both sides (no store imports: the container uses it).
- :mod:`trenv.meter.levels`: the levels from a policy and the state they give. Pure.
- :mod:`trenv.meter.ledger`: the counts in the database and the audit events (server only).

The container side is :mod:`trenv.lab.server.meter`; the route is trenv/web/api/egress.py.
"""
