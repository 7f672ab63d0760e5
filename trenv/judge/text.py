"""What a piece of text output is made of: blobs, table rows, pseudonyms. Pure and linear.

Used wherever output is about to leave the notebook server for the browser (kernel messages,
terminal output, contents-API reads) and by the airlock's checks, so that one definition of
"a table in disguise" or "an encoded file" holds everywhere. The notebook container imports
this module too, so of trenv it imports only :mod:`trenv.identifiers` (the pseudonym shape).

The measures are deliberately simple and single-pass (regular expressions over the text),
because they run on every kernel message; :func:`judge_text` turns them into a verdict under
limits that the project's policy sets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from trenv.identifiers import PSEUDONYM

# Runs of the base64/base64url/hex alphabet this long are encoded data, not words: an
# English word, an identifier or a path is shorter, and a pseudonym is 32 hex digits.
BLOB_RUN_MIN = 64
_RUN = re.compile(rf"[A-Za-z0-9+/=_-]{{{BLOB_RUN_MIN},}}")
# Printed bytes (b'\x00\x1f…'): the escapes are counted wherever they stand, since printable
# bytes break up the runs.
_ESCAPE = re.compile(r"\\x[0-9a-fA-F]{2}|\\[0-7]{3}")
ESCAPES_MIN = 64
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_DIGIT = re.compile(r"\d")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_NUMBER = re.compile(r"^[-+(]?\d[\d.,:/%eE+-]*\)?$")
_DELIMITERS = (",", ";", "\t", "|")
_HTML_ROW = re.compile(r"<tr[\s>]", re.IGNORECASE)


@dataclass(frozen=True)
class TextMeasure:
    """What :func:`measure` found in one piece of text."""

    chars: int
    blob_chars: int  # characters in encoded-looking runs, escaped bytes and binary characters
    longest_blob: int
    table_rows: int  # lines of the largest family of same-shaped table lines
    html_rows: int  # <tr> rows in HTML
    pseudonyms: int


@dataclass(frozen=True)
class TextLimits:
    """What one piece of output may hold before it is cut (the policy sets these)."""

    max_chars: int = 64 * 1024
    max_blob_chars: int = 1024
    max_table_rows: int = 48
    max_pseudonyms: int = 48


@dataclass(frozen=True)
class Cut:
    """Why a piece of text may not leave: ``rule`` is a short key, ``reason`` a sentence."""

    rule: str  # blob, table-rows, pseudonyms, size
    reason: str


def _is_encoded(run: str) -> bool:
    # Base64 and hex mix character classes; a long all-digit run is a number used as a file.
    classes = bool(_DIGIT.search(run)) + bool(_UPPER.search(run)) + bool(_LOWER.search(run))
    return classes >= 2 or run.isdigit()


def _blob_runs(text: str) -> list[int]:
    runs = [len(m.group()) for m in _RUN.finditer(text) if _is_encoded(m.group())]
    escapes = len(_ESCAPE.findall(text))
    if escapes >= ESCAPES_MIN:
        runs.append(4 * escapes)
    return runs


def _row_signatures(line: str) -> list[tuple[str, int]]:
    """The table shapes one line could belong to: (delimiter, count) or (' ', fields)."""
    out = [(sep, n) for sep in _DELIMITERS if (n := line.count(sep)) >= 1]
    fields = line.split()
    if len(fields) >= 2 and any(_NUMBER.match(f) for f in fields):
        out.append((" ", len(fields)))
    return out


def table_rows(text: str) -> int:
    """Lines of the largest family of lines with the same shape: a CSV with 300 rows gives
    300 (or so), a paragraph of prose a handful."""
    counts: dict[tuple[str, int], int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        for signature in _row_signatures(line):
            counts[signature] = counts.get(signature, 0) + 1
    return max(counts.values(), default=0)


def measure(text: str) -> TextMeasure:
    runs = _blob_runs(text)
    binary = len(_BINARY.findall(text))
    return TextMeasure(
        chars=len(text),
        blob_chars=sum(runs) + binary,
        longest_blob=max(runs, default=0),
        table_rows=table_rows(text),
        html_rows=len(_HTML_ROW.findall(text)),
        pseudonyms=len(PSEUDONYM.findall(text)),
    )


def judge_measure(m: TextMeasure, limits: TextLimits) -> Cut | None:
    """The first limit ``m`` breaks, or None."""
    if m.blob_chars > limits.max_blob_chars:
        return Cut(
            "blob",
            f"{m.blob_chars:,} characters look like encoded data (base64, hex or raw bytes); "
            f"output may carry at most {limits.max_blob_chars:,}.",
        )
    rows = max(m.table_rows, m.html_rows)
    if rows > limits.max_table_rows:
        return Cut(
            "table-rows",
            f"{rows:,} rows of a table in one output; at most {limits.max_table_rows} are "
            "shown (look at a few rows with df.head(), aggregate the rest).",
        )
    if m.pseudonyms > limits.max_pseudonyms:
        return Cut(
            "pseudonyms",
            f"{m.pseudonyms:,} person pseudonyms in one output; at most "
            f"{limits.max_pseudonyms} are shown.",
        )
    if m.chars > limits.max_chars:
        return Cut(
            "size",
            f"{m.chars:,} characters in one output; at most {limits.max_chars:,} are shown.",
        )
    return None


def judge_text(text: str, limits: TextLimits | None = None) -> Cut | None:
    """Why ``text`` may not be shown in the browser, or None when it may."""
    return judge_measure(measure(text), limits or TextLimits())


# --- Whole files: rows of a table however they are framed --------------------------------
# table_rows suits one kernel output, not a whole file: a module of code has hundreds of lines
# with one comma (the same "shape"), and a table whose rows differ in their number of fields
# splits into small families. record_rows counts lines made (almost) only of values instead,
# whatever their number of fields, plus the records of JSON/YAML written one key per line and
# of JSON written on one line. Code and prose have few such lines: words with operators,
# calls and sentences of many words are not values.

# A bare field of a table: a category, a code, a date, a path-like token.
_BARE_WORD = re.compile(r"[\w.@/%:+#&'-]+")
_QUOTED = re.compile(r""""(?:[^"\\]|\\.|"")*"|'(?:[^'\\]|\\.)*'""")
_QUOTED_WORD = re.compile(r"[\w.@/%:+#&',;!?()-]+")
_HEX_ID = re.compile(r"(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}")
_KEY_VALUE = re.compile(r"""^("[^"]{1,64}"|'[^']{1,64}'|[A-Za-z_][\w.-]{0,63})\s*:\s*(.+)$""")
_LITERALS = frozenset({"true", "false", "null", "none", "nan", "na", "n/a", "nat", "inf"})
_CALL = re.compile(r"[A-Za-z_][\w.]*\(")
# Lines of code start with these; a printed table does not.
_KEYWORDS = frozenset(
    {
        "return", "yield", "raise", "import", "from", "if", "elif", "else", "for", "while",
        "assert", "del", "def", "class", "with", "lambda", "await", "async", "global",
        "print", "library", "source", "function", "local", "echo", "export", "set", "let",
        "var", "const", "case", "when", "then", "select", "where", "and", "or", "not",
    }
)  # fmt: skip
_FILE_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.|"")*"|\'(?:[^\'\\\n]|\\.)*\'|[,;\t|&]|[^,;\t|&"\']+|["\']'
)
_FILE_DELIMITERS = (*_DELIMITERS, "&")  # & separates LaTeX table cells
# A phrase of up to this many words is a field ("New York City"); a longer one is prose.
PHRASE_WORDS = 3
QUOTED_MAX = 100
# A line with very many values is several rows written on one line (a list literal, a
# one-line CSV): every WIDE_ROW_VALUES values count as one more row.
WIDE_ROW_VALUES = 16
# Lines of base64 or hex wrapped shorter than BLOB_RUN_MIN escape the run detector in
# measure(); WRAPPED_LINES_MIN such lines in a row are one blob.
_WRAPPED_LINE = re.compile(r"[A-Za-z0-9+/=_-]{12,}")
WRAPPED_LINES_MIN = 4


def _is_number(field: str) -> bool:
    return bool(_NUMBER.match(field) or _HEX_ID.fullmatch(field))


def _field_kind(raw: str) -> str | None:
    """'value' (a number, date, id, literal, short quoted string or key: value), 'word' (a
    short bare phrase), 'empty', or None for anything else (code, prose)."""
    field = raw.strip().lstrip("([{").rstrip(")]}").strip()
    if not field:
        return "empty"
    if _QUOTED.fullmatch(field):
        words = field[1:-1].split()
        short = len(field) <= QUOTED_MAX and len(words) <= PHRASE_WORDS
        return "value" if short and all(_QUOTED_WORD.fullmatch(w) for w in words) else None
    if _is_number(field) or field.lower() in _LITERALS:
        return "value"
    pair = _KEY_VALUE.match(field)
    if pair and _field_kind(pair.group(2)) == "value":
        return "value"
    words = field.split()
    if len(words) <= PHRASE_WORDS and all(_BARE_WORD.fullmatch(w) for w in words):
        return "word"
    return None


def _fields(line: str) -> tuple[list[str], bool]:
    """The fields of one line and whether a delimiter (the line's most frequent one outside
    quotes) separated them; without one, whitespace does (quoted strings stay whole)."""
    tokens = _FILE_TOKEN.findall(line)
    counts = {d: 0 for d in _FILE_DELIMITERS}
    for token in tokens:
        if token in counts:
            counts[token] += 1
    delimiter = max(counts, key=lambda d: counts[d])
    if counts[delimiter] == 0:
        fields: list[str] = []
        for token in tokens:
            fields.extend([token] if token[:1] in "\"'" and len(token) > 1 else token.split())
        return fields, False
    fields, current = [], ""
    for token in tokens:
        if token == delimiter:
            fields.append(current)
            current = ""
        else:
            current += token
    fields.append(current)
    return fields, True


def _line_record(line: str) -> tuple[int, str | None]:
    """(rows this line holds, the key when it is one ``key: value`` pair)."""
    stripped = line.strip().removeprefix("- ").removesuffix("\\\\").rstrip()
    if not stripped:
        return 0, None
    if _CALL.search(_QUOTED.sub('""', stripped)):
        return 0, None  # a call: code, not a row of values
    fields, delimited = _fields(stripped)
    kinds = [_field_kind(f) for f in fields]
    filled = [(f.strip(), k) for f, k in zip(fields, kinds, strict=True) if k != "empty"]
    if not filled:
        return 0, None
    pair = _KEY_VALUE.match(stripped.rstrip(",;"))
    if pair and _field_kind(pair.group(2)) == "value" and len(filled) <= 2:
        # One key: value per line (pretty JSON, YAML): a record spread over lines.
        return 0, pair.group(1).strip("\"'")
    if len(filled) == 1:
        # A column written one value per line: numbers, dates, ids (not words or strings).
        return (1, None) if _is_number(filled[0][0].lstrip("([{").rstrip(")]},")) else (0, None)
    values = sum(k == "value" for _, k in filled)
    atoms = values + sum(k == "word" for _, k in filled)
    if delimited:
        is_record = 3 * atoms > 2 * len(filled)  # more than two thirds of the fields
    else:
        # Aligned columns (a printed frame or series): only bare values and words, at least
        # a third of them numbers, not a statement of code.
        numbers = sum(_is_number(f) for f, _ in filled)
        is_record = (
            atoms == len(filled)
            and 3 * numbers >= len(filled)
            and filled[0][0].lower() not in _KEYWORDS
        )
    return (max(1, atoms // WIDE_ROW_VALUES), None) if is_record else (0, None)


def _json_rows(text: str) -> int:
    """The longest array in a JSON document (its records), 0 when ``text`` is not JSON."""
    start = text.lstrip()[:1]
    if start not in ("[", "{"):
        return 0
    try:
        document = json.loads(text)
    except ValueError:
        return 0
    longest, stack = 0, [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            longest = max(longest, len(node))
            stack.extend(n for n in node if isinstance(n, list | dict))
        elif isinstance(node, dict):
            stack.extend(n for n in node.values() if isinstance(n, list | dict))
    return longest


def record_rows(text: str) -> int:
    """Rows of data in a whole file's text, however framed: delimited or aligned lines of
    values (any number of fields per line), one-value lines (a column), JSON/YAML records
    written one ``key: value`` per line (the most repeated key), and JSON arrays."""
    rows = 0
    keys: dict[str, int] = {}
    for line in text.splitlines():
        found, key = _line_record(line)
        rows += found
        if key is not None:
            keys[key] = keys.get(key, 0) + 1
    return max(rows + max(keys.values(), default=0), _json_rows(text))


def wrapped_blob_chars(text: str) -> int:
    """Characters of base64/hex wrapped into lines shorter than :data:`BLOB_RUN_MIN` (which
    :func:`measure` does not see): runs of WRAPPED_LINES_MIN or more lines of the alphabet
    alone, at least half of them mixing character classes (encoded zeros are all 'A')."""
    total = run_chars = run_lines = mixed = 0
    for line in [*text.splitlines(), ""]:
        stripped = line.strip()
        if len(stripped) < BLOB_RUN_MIN and _WRAPPED_LINE.fullmatch(stripped):
            run_chars += len(stripped)
            run_lines += 1
            mixed += _is_encoded(stripped) and not stripped.isdigit()
            continue
        if run_lines >= WRAPPED_LINES_MIN and 2 * mixed >= run_lines:
            total += run_chars
        run_chars = run_lines = mixed = 0
    return total
