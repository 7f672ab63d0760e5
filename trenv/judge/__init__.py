"""Pure judgements of output content (text, images, files): what leaves for the browser.

Depends on nothing of trenv but :mod:`trenv.identifiers` (standard library and numpy), so the
notebook container and the airlock share one definition.
"""
