"""Images as carriers of data: a fresh PNG from the pixels alone, a coarse preview, and a
judgement of whether the pixels themselves are packed bytes. Pure (numpy and Pillow).

No trenv imports: the notebook container imports this module too.

A PNG can carry a file in three places. Ancillary chunks (tEXt, zTXt, iTXt, eXIf, colour
profiles, animation frames, private chunks) hold any bytes and are invisible in a viewer:
:func:`reencode_png` decodes the pixels and writes a fresh PNG with the critical chunks and
transparency only. The pixels can *be* the file (the bytes of a parquet file laid out as
rows of RGB values): :func:`packed_bytes_score` measures whether they look like a picture or
like data. And any picture shown in a browser is a channel; :func:`coarse_preview_png` makes
one that is too small and too coarse to rebuild pixel-packed bytes from.

Pillow only ever decodes a stream rebuilt from the critical chunks (never the text chunks,
whose decompression is itself a bomb risk), only as PNG, and only after the header's
dimensions are checked against a pixel limit.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A 16 x 12 inch figure at 300 dpi is 17 Mpx; anything far beyond is a bomb or a mistake.
DEFAULT_MAX_PIXELS = 30_000_000
# What a fresh PNG is made of: the critical chunks and tRNS (transparency is part of the
# picture; without it a palette image changes what it shows).
KEPT_CHUNKS = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"})
TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_COLOUR_CHUNKS = frozenset({b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"sBIT", b"cICP", b"mDCv", b"cLLi"})
_ANIMATION_CHUNKS = frozenset({b"acTL", b"fcTL", b"fdAT"})
_MAX_ICC_BYTES = 1024 * 1024

# Packed-bytes thresholds (see packed_bytes_score). Drawings and photographs measured at most
# 0.88 neighbour randomness; packed files measure 1.0 (random bytes) to 1.4 (plain tables),
# because the difference of two independent bytes is at least as random as either.
MIN_PIXELS = 256
MIN_ENTROPY_BITS = 3.0
PACKED_RANDOMNESS = 0.95
# Low-bit hiding in a drawing: mostly flat colour, yet the low bits of flat areas differ.
FLAT_SHARE = 0.7
LOW_BIT_NOISE = 0.3

# Previews: at most this long a side, always shrunk by at least this factor, this many colours.
PREVIEW_MAX_SIDE = 480
PREVIEW_MAX_SCALE = 0.75
PREVIEW_COLOURS = 16


class ImageRefused(ValueError):
    """The bytes are not a PNG that can be decoded safely; the message says why."""


class ImageTooLarge(ImageRefused):
    """The header announces more pixels than the limit (a decompression bomb, or a figure
    saved at an extreme resolution)."""

    def __init__(self, width: int, height: int, limit: int) -> None:
        self.width, self.height, self.limit = width, height, limit
        super().__init__(f"{width} x {height} pixels is more than the limit of {limit:,} pixels")


# --- chunks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    type: bytes
    payload: bytes

    @property
    def name(self) -> str:
        return self.type.decode("latin-1")

    @property
    def keyword(self) -> str:
        """A text chunk's keyword (what matplotlib calls 'Software'); empty otherwise."""
        if self.type not in TEXT_CHUNKS:
            return ""
        return self.payload.split(b"\x00", 1)[0][:79].decode("latin-1")

    @property
    def group(self) -> str:
        if self.type in TEXT_CHUNKS:
            return "text"
        if self.type == b"eXIf":
            return "Exif"
        if self.type in _COLOUR_CHUNKS:
            return "colour"
        if self.type in _ANIMATION_CHUNKS:
            return "animation"
        if len(self.type) == 4 and self.type[1] & 0x20:  # lower-case second letter: private
            return "private"
        return "other"


def png_chunk_list(data: bytes) -> list[Chunk]:
    """The chunks of a PNG up to IEND, lengths and CRCs checked; :class:`ImageRefused` if the
    structure is broken."""
    if not data.startswith(PNG_SIGNATURE):
        raise ImageRefused("it has no PNG signature")
    chunks: list[Chunk] = []
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise ImageRefused("a chunk is truncated")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ImageRefused("a chunk is truncated")
        payload = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(ctype + payload) & 0xFFFFFFFF != crc:
            raise ImageRefused(f"chunk {ctype!r} has a bad CRC")
        chunks.append(Chunk(ctype, payload))
        pos = end + 4
        if ctype == b"IEND":
            return chunks


def _chunk_bytes(chunk: Chunk) -> bytes:
    crc = zlib.crc32(chunk.type + chunk.payload) & 0xFFFFFFFF
    return (
        struct.pack(">I", len(chunk.payload)) + chunk.type + chunk.payload + struct.pack(">I", crc)
    )


@dataclass(frozen=True)
class _Parsed:
    chunks: list[Chunk]
    width: int
    height: int
    bit_depth: int


def _parse(data: bytes, max_pixels: int) -> _Parsed:
    chunks = png_chunk_list(data)
    if chunks[0].type != b"IHDR" or len(chunks[0].payload) != 13:
        raise ImageRefused("it does not start with an image header (IHDR)")
    width, height, bit_depth = struct.unpack(">IIB", chunks[0].payload[:9])
    if width == 0 or height == 0:
        raise ImageRefused("it has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(width, height, max_pixels)
    if not any(c.type == b"IDAT" for c in chunks):
        raise ImageRefused("it has no image data (IDAT)")
    return _Parsed(chunks, width, height, bit_depth)


def _decode(parsed: _Parsed) -> Image.Image:
    """The pixels, decoded by Pillow from a stream of the kept chunks only."""
    stream = PNG_SIGNATURE + b"".join(
        _chunk_bytes(c) for c in parsed.chunks if c.type in KEPT_CHUNKS
    )
    try:
        img = Image.open(io.BytesIO(stream), formats=["PNG"])
        img.load()
    except (
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        struct.error,
        Image.DecompressionBombError,
    ) as exc:
        raise ImageRefused(f"its pixels cannot be decoded ({exc})") from None
    if img.size != (parsed.width, parsed.height):
        raise ImageRefused("its decoded size differs from its header")
    return img


def decode_png(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The pixels of a PNG (header checked against ``max_pixels`` before decoding)."""
    return _decode(_parse(data, max_pixels))


# --- re-encoding -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReencodedImage:
    """A fresh PNG made from the pixels of another, and what did not survive."""

    data: bytes
    width: int
    height: int
    mode: str
    source_size: int
    removed: tuple[Chunk, ...]  # the chunks of the source that are not in the fresh PNG
    notes: tuple[str, ...]  # other changes (bit depth, colour profile)

    def removed_groups(self) -> dict[str, tuple[int, int, list[str]]]:
        """group -> (chunks, bytes, chunk types) of the removed chunks."""
        out: dict[str, tuple[int, int, list[str]]] = {}
        for c in self.removed:
            n, size, names = out.get(c.group, (0, 0, []))
            out[c.group] = (n + 1, size + len(c.payload), sorted({*names, c.name}))
        return out

    def summary(self) -> str:
        """'3 text chunks (280.1 KB), 1 private chunk (vpAg, 12 B) removed; ...'."""
        parts = []
        for group, (n, size, names) in sorted(self.removed_groups().items()):
            what = f"{n} {group} chunk{'s' if n != 1 else ''}"
            shown = "" if group == "text" else ", ".join(names) + ", "
            parts.append(f"{what} ({shown}{_size(size)})")
        text = (", ".join(parts) + " removed") if parts else "no chunks removed"
        return "; ".join([text, *self.notes])


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _icc_profile(chunks: list[Chunk]) -> bytes | None:
    chunk = next((c for c in chunks if c.type == b"iCCP"), None)
    if chunk is None:
        return None
    _name, _, rest = chunk.payload.partition(b"\x00")
    try:
        inflater = zlib.decompressobj()
        profile = inflater.decompress(rest[1:], _MAX_ICC_BYTES)
    except zlib.error:
        return None
    return None if inflater.unconsumed_tail else profile


def _to_srgb(img: Image.Image, icc: bytes) -> tuple[Image.Image, str]:
    """The pixels converted from their embedded profile to sRGB (what an untagged PNG means)."""
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(source).lower():
            return img, ""  # untagged means sRGB: nothing to convert
        if img.mode not in ("RGB", "RGBA"):
            raise ImageCms.PyCMSError(f"mode {img.mode}")
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        converted = ImageCms.profileToProfile(img, source, srgb, outputMode=img.mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img, f"colour profile ({_size(len(icc))}) not applied and removed"
    assert converted is not None  # profileToProfile returns an image unless inPlace
    return converted, f"colour profile ({_size(len(icc))}) converted to sRGB and removed"


def _eight_bit(img: Image.Image, bit_depth: int) -> Image.Image:
    """Greyscale at 8 bits; Pillow keeps 16-bit grey as mode I, whose low byte is invisible
    on screen and a place to hide data (16-bit colour Pillow already reads as 8 bits)."""
    if not (img.mode.startswith("I") or img.mode == "F"):
        return img
    values = np.asarray(img).astype(np.int64)
    shift = 8 if bit_depth == 16 else 0
    return Image.fromarray(np.clip(values >> shift, 0, 255).astype(np.uint8), "L")


def _fresh(img: Image.Image, parsed: _Parsed) -> tuple[Image.Image, list[str]]:
    """A copy of the pixels with nothing of the source's metadata, at 8 bits a sample."""
    notes: list[str] = []
    img = _eight_bit(img, parsed.bit_depth)
    if img.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        img = img.convert("RGBA")
    if parsed.bit_depth == 16:
        notes.append("16-bit samples reduced to 8 bits")
    icc = _icc_profile(parsed.chunks)
    if icc is not None:
        img, note = _to_srgb(img, icc)
        notes += [note] if note else []
    fresh = img.copy()
    fresh.info = {}
    if "transparency" in img.info:
        fresh.info["transparency"] = img.info["transparency"]
    return fresh, notes


def _encode(img: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG", **options)
    data = out.getvalue()
    extra = {c.name for c in png_chunk_list(data)} - {t.decode() for t in KEPT_CHUNKS}
    if extra:  # Pillow writes only what it is given; hold it to that
        raise RuntimeError(f"the re-encoded PNG unexpectedly has chunks {sorted(extra)}")
    return data


def reencode_png(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ReencodedImage:
    """A fresh PNG of the same pixels: only IHDR, PLTE, tRNS, IDAT and IEND survive.

    Colour stays right: an embedded ICC profile is applied (the pixels are converted to sRGB,
    which an untagged PNG means) rather than carried. :class:`ImageRefused` if the bytes are
    not a decodable PNG, :class:`ImageTooLarge` before decoding if the header announces more
    than ``max_pixels`` pixels.
    """
    parsed = _parse(data, max_pixels)
    img = _decode(parsed)
    fresh, notes = _fresh(img, parsed)
    options: dict[str, object] = {"compress_level": 9}
    if "transparency" in fresh.info:
        options["transparency"] = fresh.info["transparency"]
    out = _encode(fresh, **options)
    removed = tuple(c for c in parsed.chunks if c.type not in KEPT_CHUNKS)
    return ReencodedImage(
        data=out,
        width=fresh.width,
        height=fresh.height,
        mode=fresh.mode,
        source_size=len(data),
        removed=removed,
        notes=tuple(notes),
    )


# --- previews --------------------------------------------------------------------------------


def coarse_preview_png(
    data: bytes,
    *,
    max_side: int = PREVIEW_MAX_SIDE,
    colours: int = PREVIEW_COLOURS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> bytes:
    """A PNG to *look at* a figure, from which packed bytes cannot be rebuilt.

    The picture is flattened on white, always shrunk (to ``max_side`` on the long side and at
    least by :data:`PREVIEW_MAX_SCALE`, with a Lanczos filter, so every preview pixel is a
    weighted mix of several source pixels) and reduced to ``colours`` colours without
    dithering. A byte laid out as one pixel's channel therefore has no pixel of its own any
    more, and what is left is at most log2(colours) bits a preview pixel: at 16 colours and
    480 px that bounds the whole preview well below the file it was made from. Only coarse
    structures (blocks of flat colour several pixels wide) survive; :func:`packed_bytes_score`
    looks for those at intake, and what remains is the stated residual risk of a person
    reading their own screen.
    """
    img = decode_png(data, max_pixels)
    rgba = img.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    scale = min(max_side / max(flat.size), PREVIEW_MAX_SCALE)
    size = (max(1, round(flat.width * scale)), max(1, round(flat.height * scale)))
    small = flat.resize(size, Image.Resampling.LANCZOS)
    coarse = small.quantize(
        colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    return _encode(coarse, optimize=True)


# --- packed bytes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PackedVerdict:
    """Whether an image's pixels look like packed bytes, with the figures behind it."""

    packed: bool
    reason: str
    pixels: int
    entropy_bits: float  # value entropy of the decisive channel, bits per sample (max 8)
    randomness: float  # neighbour-difference entropy / value entropy (about 1 or more: data)
    channel: str  # the decisive channel
    view: str  # "pixels", or "distinct rows and columns" for images of repeated blocks
    distinct_colours: int
    flat_share: float  # neighbouring pixels with the same colour in the high six bits
    low_bit_noise: float  # of those, the share whose low bits differ

    def figures(self) -> str:
        share = self.distinct_colours / self.pixels if self.pixels else 0.0
        return (
            f"{self.entropy_bits:.2f} bits per sample in channel {self.channel}, "
            f"neighbour randomness {self.randomness:.2f} over the {self.view} (packed bytes: "
            f"{PACKED_RANDOMNESS} or more at {MIN_ENTROPY_BITS:g} bits or more), "
            f"{self.distinct_colours:,} distinct "
            f"colours in {self.pixels:,} pixels ({share:.0%}), low-bit noise on flat colour "
            f"{self.low_bit_noise:.0%}"
        )


def _entropy(values: np.ndarray) -> float:
    counts = np.bincount(values.ravel(), minlength=256)
    p = counts[counts > 0] / values.size
    return float(-(p * np.log2(p)).sum())


def _randomness(channel: np.ndarray) -> tuple[float, float]:
    """(value entropy, min over both axes of neighbour-difference entropy / value entropy).

    uint8 subtraction wraps, so differences are taken modulo 256 as packed bytes would be.
    """
    h = _entropy(channel)
    if h == 0.0 or channel.shape[0] < 2 or channel.shape[1] < 2:
        return h, 0.0
    dx = _entropy(channel[:, 1:] - channel[:, :-1])
    dy = _entropy(channel[1:, :] - channel[:-1, :])
    return h, min(dx, dy) / h


def _collapse(a: np.ndarray) -> np.ndarray:
    """The image without rows and columns equal to their predecessor: data drawn as blocks of
    flat colour comes back to one pixel per value."""
    rows = np.ones(a.shape[0], bool)
    rows[1:] = np.any(a[1:] != a[:-1], axis=(1, 2))
    a = a[rows]
    cols = np.ones(a.shape[1], bool)
    cols[1:] = np.any(a[:, 1:] != a[:, :-1], axis=(0, 2))
    return a[:, cols]


def _samples(img: Image.Image) -> tuple[np.ndarray, str]:
    """Height x width x channels of uint8 (8-bit input), and the channels' names."""
    if img.mode in ("1", "L"):
        return np.asarray(img.convert("L"))[:, :, None], "L"
    if img.mode == "LA":
        return np.asarray(img), "LA"
    has_alpha = img.mode in ("RGBA", "PA") or "transparency" in img.info
    mode = "RGBA" if has_alpha else "RGB"
    return np.asarray(img.convert(mode)), mode


def _colour_codes(a: np.ndarray) -> np.ndarray:
    """One little-endian uint32 per pixel, channel 0 in the lowest byte."""
    padded = np.zeros((*a.shape[:2], 4), np.uint8)
    padded[:, :, : a.shape[2]] = a
    return padded.view(np.dtype("<u4"))[:, :, 0]


def _low_bit_noise(codes: np.ndarray, colour_channels: int) -> tuple[float, float]:
    """(share of horizontal neighbours equal in the high six bits of every colour channel,
    share of those whose low bits differ)."""
    colour = codes & np.uint32((1 << (8 * colour_channels)) - 1)
    high = colour & np.uint32(0xFCFCFCFC)
    same_high = high[:, 1:] == high[:, :-1]
    flat = int(same_high.sum())
    if flat == 0:
        return 0.0, 0.0
    differ = int((same_high & (colour[:, 1:] != colour[:, :-1])).sum())
    return flat / same_high.size, differ / flat


def packed_bytes_score(png_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> PackedVerdict:
    """Judge whether a PNG's pixels are a picture or a file laid out as pixel values.

    Pictures are smooth: a pixel predicts its neighbour, so the differences between
    neighbours are far less random than the values (drawings and photographs measured at most
    0.88 of the value entropy). Packed bytes are not: neighbouring bytes of a file are
    independent as far as pixels go, so the differences are as random as the values, or more
    (1.0 for compressed or random bytes, up to 1.4 for plain tables and text). An image is
    flagged when one channel holds at least :data:`MIN_ENTROPY_BITS` bits a sample and its
    neighbour randomness reaches :data:`PACKED_RANDOMNESS`, over the pixels or over the
    distinct rows and columns (which undoes data drawn as blocks of flat colour); or when a
    mostly flat-coloured drawing has noise in the low bits of its flat areas (data hidden in
    the least significant bits). Entropy, randomness, distinct colours and the low-bit noise
    are reported either way.

    A chart whose pixels are themselves random at pixel scale (a heat map of noise at one
    cell per pixel, a cloud of a hundred thousand randomly coloured points) cannot be told
    from packed bytes and is flagged too; a checker then decides.
    """
    parsed = _parse(png_bytes, max_pixels)
    a, mode = _samples(_eight_bit(_decode(parsed), parsed.bit_depth))
    pixels = a.shape[0] * a.shape[1]
    collapsed = _collapse(a)
    # Collapsing drops repeated rows and columns, never a colour: count on the smaller one.
    distinct = int(np.unique(_colour_codes(collapsed)).size)
    flat, noise = _low_bit_noise(_colour_codes(a), 1 if mode in ("L", "LA") else 3)
    best = (False, float("-inf"), 0.0, 0.0, mode[0], "pixels")
    for view, arr in (("pixels", a), ("distinct rows and columns", collapsed)):
        if arr.shape[0] * arr.shape[1] < MIN_PIXELS:
            continue
        for c in range(arr.shape[2]):
            h, r = _randomness(np.ascontiguousarray(arr[:, :, c]))
            flagged = h >= MIN_ENTROPY_BITS and r >= PACKED_RANDOMNESS
            rank = r if h >= MIN_ENTROPY_BITS else r - 10.0  # low-entropy channels rank last
            if (flagged, rank) > (best[0], best[1]):
                best = (flagged, rank, h, r, mode[c], view)
    random_pixels, _, entropy, randomness, channel, view = best
    hidden_bits = pixels >= MIN_PIXELS and flat >= FLAT_SHARE and noise >= LOW_BIT_NOISE
    if pixels < MIN_PIXELS:
        reason = f"the image is too small to judge ({pixels} pixels) and too small to hold much"
    elif random_pixels:
        reason = (
            f"in channel {channel}, over the {view}, neighbours differ as randomly as the "
            f"values themselves vary ({randomness:.2f} times their {entropy:.2f} bits a "
            "sample): that is how the bytes of a file laid out as pixels look, not a drawing "
            "or a photograph"
        )
    elif hidden_bits:
        reason = (
            f"the image is flat colour ({flat:.0%} of neighbours), yet the low bits of "
            f"{noise:.0%} of those flat neighbours differ: data hidden in the low bits"
        )
    else:
        reason = "neighbouring pixels predict each other as in a drawing or a photograph"
    return PackedVerdict(
        packed=pixels >= MIN_PIXELS and (random_pixels or hidden_bits),
        reason=reason,
        pixels=pixels,
        entropy_bits=round(entropy, 3),
        randomness=round(randomness, 3),
        channel=channel,
        view=view,
        distinct_colours=distinct,
        flat_share=round(flat, 3),
        low_bit_noise=round(noise, 3),
    )
