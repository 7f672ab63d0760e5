"""What a directory listing tells the browser that it did not know: the meter counts that.

JupyterLab asks for the listing of the folder on screen every few seconds; counting every
answer would use up a researcher's hour on polling. But names are a channel too (a folder
of 7,000 files named after the rows of a table), so the entries the browser has not been
sent before are counted, once, as text.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

# Folders remembered; the least recently listed is forgotten first (and counted again).
FOLDERS_REMEMBERED = 256


class ListingTally:
    """Remembers the names sent per folder; :meth:`new_bytes` counts the ones not sent yet."""

    def __init__(self, folders: int = FOLDERS_REMEMBERED) -> None:
        self._folders = folders
        self._seen: OrderedDict[str, set[str]] = OrderedDict()

    def new_bytes(self, folder: str, entries: Iterable[Mapping[str, Any]]) -> int:
        seen = self._seen.pop(folder, set())
        total = 0
        names: set[str] = set()
        for entry in entries:
            name = str(entry.get("name", ""))
            names.add(name)
            if name not in seen:
                total += len(json.dumps(entry, default=str).encode("utf-8"))
        self._seen[folder] = names
        while len(self._seen) > self._folders:
            self._seen.popitem(last=False)
        return total
