"""The service layer over the registry tables.

Functions take an open session and an actor name, enforce the TRE's rules, write an audit
event for every change, and raise :mod:`trenv.errors` for anything a person must fix. The CLI
and the web service both call these, so the rules hold whichever door is used.
"""
