"""trenv.judge.image on real images: charts and a photograph pass, files packed into pixels
are flagged, a re-encoded PNG keeps its pixels and nothing else, previews cannot carry the
file they were made from."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.support.images import (
    CHARTS,
    chart,
    chunk,
    chunk_types,
    packed_png,
    parquet_file,
    pixels,
    png_of,
    smuggling_chunks,
    with_chunks,
)
from trenv.judge.image import (
    KEPT_CHUNKS,
    PACKED_RANDOMNESS,
    PREVIEW_COLOURS,
    ImageRefused,
    ImageTooLarge,
    coarse_preview_png,
    packed_bytes_score,
    reencode_png,
)


def test_the_module_needs_nothing_of_trenv() -> None:
    """The notebook container imports it too, without the hub's packages."""
    code = (
        "import sys, trenv.judge.image; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'trenv'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['trenv', 'trenv.judge', 'trenv.judge.image']"


# --- packed bytes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHARTS)
def test_charts_and_photographs_are_not_packed_bytes(name: str) -> None:
    verdict = packed_bytes_score(chart(name))
    assert not verdict.packed, (name, verdict)
    assert "drawing or a photograph" in verdict.reason
    assert verdict.pixels > 100_000 and verdict.distinct_colours > 1


def test_a_photograph_is_random_in_value_but_not_between_neighbours() -> None:
    verdict = packed_bytes_score(chart("photograph"))
    assert verdict.entropy_bits > 6.5  # as rich in values as packed bytes...
    assert verdict.randomness < 0.8  # ...but every pixel predicts its neighbour


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
@pytest.mark.parametrize("payload", ["random", "parquet"])
def test_bytes_packed_into_pixels_are_flagged(mode: str, payload: str) -> None:
    data = os.urandom(150_000) if payload == "random" else parquet_file()
    verdict = packed_bytes_score(packed_png(data, mode))
    assert verdict.packed, verdict
    assert verdict.randomness >= PACKED_RANDOMNESS and verdict.entropy_bits >= 3
    assert verdict.view == "pixels" and "file laid out as pixels" in verdict.reason
    assert f"{verdict.randomness:.2f}" in verdict.figures()


def test_bytes_drawn_as_blocks_of_flat_colour_are_flagged() -> None:
    verdict = packed_bytes_score(packed_png(parquet_file(), "RGB", width=96, block=3))
    assert verdict.packed and verdict.view == "distinct rows and columns"


def test_data_in_the_low_bits_of_a_flat_chart_is_flagged() -> None:
    bar = pixels(chart("bar"))[:, :, :3]
    bits = np.unpackbits(np.frombuffer(parquet_file(), np.uint8))
    lows = np.resize(bits, bar.shape).astype(np.uint8)
    hidden = packed_bytes_score(png_of(Image.fromarray((bar & 0xFE) | lows)))
    assert hidden.packed and "low bits" in hidden.reason
    assert hidden.flat_share > 0.9 and hidden.low_bit_noise > 0.3


def test_a_tiny_image_is_too_small_to_judge() -> None:
    verdict = packed_bytes_score(packed_png(os.urandom(48), "RGB", width=4))
    assert not verdict.packed and "too small" in verdict.reason


# --- re-encoding -------------------------------------------------------------------------------


def test_reencoding_keeps_the_pixels_and_drops_every_other_chunk() -> None:
    original = chart("bar")
    payload = parquet_file()
    smuggler = with_chunks(original, *smuggling_chunks(payload))
    done = reencode_png(smuggler)
    assert set(chunk_types(done.data)) <= KEPT_CHUNKS
    assert np.array_equal(pixels(done.data), pixels(original))
    assert payload[:64] not in done.data and zlib.compress(payload)[:64] not in done.data
    groups = done.removed_groups()
    assert groups["text"][0] == 4  # the three smuggled ones and matplotlib's Software
    assert groups["Exif"][0] == 1 and groups["private"][2] == ["prVt"]
    summary = done.summary()
    assert "4 text chunks" in summary and "1 private chunk (prVt" in summary
    assert summary.endswith("removed") and done.source_size == len(smuggler)


def test_a_text_chunk_bomb_is_dropped_without_being_inflated() -> None:
    bomb = chunk(b"zTXt", b"big\x00\x00" + zlib.compress(bytes(64 * 1024 * 1024), 9))
    png = with_chunks(chart("bar"), bomb)
    with pytest.raises(ValueError, match="too large"):  # Pillow itself would choke on it
        Image.open(io.BytesIO(png)).load()
    done = reencode_png(png)
    assert b"zTXt" not in chunk_types(done.data)
    assert "2 text chunks" in done.summary()  # the bomb and matplotlib's Software


def test_transparency_of_a_palette_image_survives() -> None:
    img = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) % 4, "P")
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
    out = io.BytesIO()
    img.save(out, format="PNG", transparency=bytes([0, 255, 255, 128]))
    done = reencode_png(out.getvalue())
    assert b"tRNS" in chunk_types(done.data) and done.mode == "P"

    def rgba(png: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))

    assert np.array_equal(rgba(done.data), rgba(out.getvalue()))
    assert rgba(done.data)[0, 0, 3] == 0 and rgba(done.data)[0, 3, 3] == 128


def test_sixteen_bit_grey_loses_its_invisible_low_byte() -> None:
    high = np.tile(np.arange(0, 256, 4, dtype=np.uint16), (64, 1))
    low = np.frombuffer(os.urandom(64 * 64), np.uint8).reshape(64, 64).astype(np.uint16)
    done = reencode_png(png_of(Image.fromarray((high << 8) | low)))
    assert done.mode == "L" and "16-bit samples reduced to 8 bits" in done.summary()
    assert np.array_equal(pixels(done.data), high.astype(np.uint8))


def test_an_image_over_the_pixel_limit_is_refused_before_decoding() -> None:
    blank = png_of(Image.new("L", (2000, 1500)))  # 3 Mpx of zeros: a few KB on disk
    assert len(blank) < 20_000
    with pytest.raises(ImageTooLarge) as refused:
        reencode_png(blank, max_pixels=1_000_000)
    assert "2000 x 1500 pixels" in str(refused.value)
    with pytest.raises(ImageTooLarge):
        packed_bytes_score(blank, max_pixels=1_000_000)


def test_undecodable_pixels_are_refused() -> None:
    good = png_of(Image.new("RGB", (32, 32), "white"))
    types = chunk_types(good)
    assert types == [b"IHDR", b"IDAT", b"IEND"]
    broken = good[:33] + chunk(b"IDAT", b"not deflate data") + chunk(b"IEND", b"")
    with pytest.raises(ImageRefused, match="cannot be decoded"):
        reencode_png(broken)
    with pytest.raises(ImageRefused, match="no PNG signature"):
        reencode_png(b"region,n\nnorth,120\n")


# --- previews ----------------------------------------------------------------------------------


def test_a_preview_is_small_coarse_and_carries_nothing_but_pixels() -> None:
    original = with_chunks(chart("terrain"), *smuggling_chunks(b"secret" * 100))
    preview = coarse_preview_png(original)
    img = Image.open(io.BytesIO(preview))
    assert max(img.size) <= 480 and img.width <= 0.75 * 640
    assert len(img.getcolors() or []) <= PREVIEW_COLOURS
    assert set(chunk_types(preview)) <= KEPT_CHUNKS and b"secret" not in preview


def test_a_preview_of_packed_bytes_cannot_hold_the_file() -> None:
    payload = parquet_file()
    packed = packed_png(payload, "RGB")
    preview = coarse_preview_png(packed)
    img = Image.open(io.BytesIO(preview))
    # at most log2(16) = 4 bits a pixel: less than the file, whatever the encoding
    assert img.width * img.height * 4 // 8 < len(payload) // 4
    shown = np.asarray(img.convert("RGB")).tobytes()
    assert payload[4:36] not in shown and b"PAR1" not in shown
