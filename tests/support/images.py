"""Real images for the image tests: matplotlib charts, a photograph, and the attack of
issue 14 (a parquet file packed into a PNG's pixels or hidden in its chunks)."""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

import matplotlib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the headless backend
from matplotlib import cbook
from matplotlib.figure import Figure

CHARTS = ("bar", "line", "scatter", "heat map", "tile map", "terrain", "photograph")


def png_of(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _figure_png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out.getvalue()


@cache
def chart(name: str) -> bytes:
    """A figure as a researcher would save it (matplotlib's PNG, with its metadata)."""
    rng = np.random.default_rng(3)
    fig, ax = plt.subplots()
    if name == "bar":
        ax.bar(["theft", "fraud", "assault", "other"], [120, 45, 80, 60])
    elif name == "line":
        x = np.linspace(2015, 2024, 200)
        ax.plot(x, np.sin(x), x, np.cos(x) + rng.normal(0, 0.1, x.size))
    elif name == "scatter":
        ax.scatter(rng.normal(size=2000), rng.normal(size=2000), s=4, alpha=0.5)
    elif name == "heat map":
        shown = ax.imshow(rng.random((40, 60)), cmap="viridis")
        fig.colorbar(shown)
    elif name == "tile map":  # a choropleth of 144 regions in six flat colours
        ax.pcolormesh(rng.integers(0, 6, (12, 12)), cmap="tab10", edgecolors="white")
        ax.set_aspect("equal")
    elif name == "terrain":  # a map with a continuous colormap
        ax.imshow(cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"], cmap="terrain")
    elif name == "photograph":
        plt.close(fig)
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            return png_of(Image.open(f).convert("RGB"))
    else:
        raise ValueError(name)
    return _figure_png(fig)


@cache
def parquet_file(rows: int = 4000) -> bytes:
    """A parquet file of the kind the TRE holds: pseudonyms, offences, years, sentences."""
    rng = np.random.default_rng(7)
    table = pa.table(
        {
            "person_pseudonym": [f"{v:032x}" for v in rng.integers(0, 2**62, rows)],
            "offence": rng.choice(["theft", "fraud", "assault", "other"], rows),
            "year": rng.integers(2015, 2025, rows),
            "sentence_days": rng.integers(1, 4000, rows),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def packed_png(data: bytes, mode: str = "RGB", width: int = 256, block: int = 1) -> bytes:
    """``data`` laid out as pixel rows (zero-padded), each value drawn ``block`` px square."""
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    per_row = width * channels
    rows = -(-len(data) // per_row)
    values = np.frombuffer(data + bytes(rows * per_row - len(data)), np.uint8)
    pixels = values.reshape((rows, width, channels) if channels > 1 else (rows, width))
    if block > 1:
        pixels = pixels.repeat(block, axis=0).repeat(block, axis=1)
    return png_of(Image.fromarray(pixels, mode))


def chunk(ctype: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(ctype + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", crc)


def with_chunks(png: bytes, *chunks: bytes) -> bytes:
    """``png`` with ``chunks`` inserted right after its header (IHDR)."""
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + b"".join(chunks) + png[ihdr_end:]


def smuggling_chunks(payload: bytes) -> list[bytes]:
    """tEXt, zTXt, iTXt, eXIf and a private chunk, the zTXt holding ``payload``."""
    return [
        chunk(b"tEXt", b"Comment\x00" + b"row 1: 0123456789abcdef0123456789abcdef, 42"),
        chunk(b"zTXt", b"data\x00\x00" + zlib.compress(payload)),
        chunk(b"iTXt", b"notes\x00\x00\x00\x00\x00" + b"meer rijen"),
        chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 32),
        chunk(b"prVt", payload[:512]),
    ]


def chunk_types(png: bytes) -> list[bytes]:
    types, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        types.append(png[pos + 4 : pos + 8])
        pos += 12 + length
    return types


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))
