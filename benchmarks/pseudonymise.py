"""Pseudonymisation throughput: trenv's Pseudonymiser versus a plain ``hmac.new`` loop.

All variants produce the same pseudonyms (HMAC-SHA256 of the identifier, hex, first 128
bits); the script checks that before it prints ids per second and the ratios.

    .venv/bin/python benchmarks/pseudonymise.py            # 10M ids
    .venv/bin/python benchmarks/pseudonymise.py --n 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import time

from trenv.identifiers import PSEUDONYM_HEX_CHARS
from trenv.vault.pseudonym import Pseudonymiser


def plain_loop(key: bytes, ids: list[str]) -> list[str]:
    k = PSEUDONYM_HEX_CHARS
    return [hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:k] for value in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="number of ids")
    args = parser.parse_args()

    key = os.urandom(32)
    ids = [f"{100_000_000 + i:09d}" for i in range(args.n)]
    pseudonymiser = Pseudonymiser(key, label="benchmark")

    start = time.perf_counter()
    expected = plain_loop(key, ids)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    got = pseudonymiser.pseudonymise(ids)
    seconds = time.perf_counter() - start
    assert got == expected, "trenv pseudonyms differ from hmac.new"

    print(f"ids: {args.n:,}   CPUs: {os.cpu_count()}   load average: {os.getloadavg()[0]:.1f}")
    print(f"plain hmac.new loop      {args.n / plain:12,.0f} ids/s  {plain:6.1f} s   1.00x")
    print(
        f"trenv Pseudonymiser      {args.n / seconds:12,.0f} ids/s  {seconds:6.1f} s   "
        f"{plain / seconds:.2f}x"
    )


if __name__ == "__main__":
    main()
