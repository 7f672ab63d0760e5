"""The demo installation and its synthetic justice data: not part of the TRE.

`make demo` and the CI tests use this package to stand up a working installation with
nothing real in it: demo people with generated logins (``installation``), synthetic supplier
extracts of the justice chain (``synth``, ``synth_lists``), the project's data taken through
the ordinary ingest -> link -> grant -> publish path (``data``), and the example notebooks
put into a researcher's workspace and run in a real server (``notebooks``).

None of it is inside the TRE's trust boundary: a production installation never needs it,
and nothing in the core (vault, registry, airlock, privacy, hub, web …) may import it, so
the demo's shortcuts (generated passwords in a file, a seeded population) cannot become a
dependency of what guards real data. Only ``trenv.cli.demo`` and the tests reach in here;
``tests/foundation/test_layering.py`` holds that rule.
"""
