"""Pseudonymisation throughput: trenv's Pseudonymiser versus a plain ``hmac.new`` loop.

Both produce the same pseudonyms (HMAC-SHA256 of the identifier, hex, first 128 bits); the
script checks that before it prints ids per second and the ratio.

    .venv/bin/python benchmarks/pseudonymise.py            # 10M ids
    .venv/bin/python benchmarks/pseudonymise.py --n 1000000 --workers 1
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import time

from trenv.vault.pseudonym import PSEUDONYM_HEX_CHARS, Pseudonymiser


def plain_loop(key: bytes, ids: list[str]) -> list[str]:
    k = PSEUDONYM_HEX_CHARS
    return [hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:k] for value in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="number of ids")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPUs)")
    args = parser.parse_args()

    key = os.urandom(32)
    ids = [f"{100_000_000 + i:09d}" for i in range(args.n)]
    pseudonymiser = Pseudonymiser(key, label="benchmark")

    start = time.perf_counter()
    expected = plain_loop(key, ids)
    plain = time.perf_counter() - start

    start = time.perf_counter()
    got = pseudonymiser.pseudonymise(ids, workers=args.workers)
    fast = time.perf_counter() - start

    assert got == expected, "trenv pseudonyms differ from hmac.new"
    print(f"ids:               {args.n:,}")
    print(f"CPUs:              {os.cpu_count()}  (workers: {args.workers or os.cpu_count()})")
    print(f"plain hmac.new:    {args.n / plain:12,.0f} ids/s  ({plain:.1f} s)")
    print(f"trenv Pseudonymiser:{args.n / fast:11,.0f} ids/s  ({fast:.1f} s)")
    print(f"ratio:             {plain / fast:.2f}x")


if __name__ == "__main__":
    main()
