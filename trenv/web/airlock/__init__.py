"""The airlock on the web: the JSON API (``api``), the pages (``pages``) and what they share.

Both routers call the same commands (:mod:`trenv.airlock.service`) and queries
(:mod:`trenv.airlock.queries`) and render the same models (``view``), so the pages never
import the API's router to reuse its helpers: what both need is in ``common``. ``caller``
says who calls and from where, ``files`` which bytes reach a browser, ``preview`` and
``meter`` what the request page shows and how much of it counts against the hourly limit.
"""
