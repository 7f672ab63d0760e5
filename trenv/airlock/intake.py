"""Reading the files a researcher names from their workspace, safely, at submission.

The workspace is written by untrusted code, so a path is never resolved by the kernel in one
go: it is opened one component at a time relative to the previous directory's descriptor
with ``O_NOFOLLOW``, so a symbolic link anywhere (also one swapped in between a check and the
read) is refused instead of followed out of the workspace (to ``/data``, say). The last
component is opened with ``O_NONBLOCK`` so that a fifo cannot hang the server, and the type
and size are taken from ``fstat`` of that same descriptor. At most ``limit + 1`` bytes are
read, so a file growing while it is read cannot slip past the size limit.

Only the allow-listed types of :mod:`trenv.airlock.formats` are read, and each file's bytes
are validated by its format's module: the content must match the extension (a ``.png`` that
is really a CSV is refused), and content that can carry hidden data or active content
(macros, embedded files, JavaScript, data-file notebook outputs) is refused with a reason
the researcher can act on. An image is frozen as a fresh PNG of its pixels, so that nothing
invisible in it (text chunks, Exif, private chunks) is ever stored, shown or released.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trenv.airlock.formats import ALLOWED_TYPES, FileType, suffix, validate_content
from trenv.disclosure.tauargus import WORKSPACE_FOLDER as TAU_ARGUS_FOLDER
from trenv.errors import Invalid
from trenv.judge.image import DEFAULT_MAX_PIXELS, ReencodedImage

RECORD_SUFFIX = ".record.json"
DP_SUFFIX = ".dp.json"
SIDECAR_SUFFIXES = (RECORD_SUFFIX, DP_SUFFIX)
MAX_PATH_CHARS = 1024
MAX_NAME_CHARS = 255


@dataclass(frozen=True)
class IntakeLimits:
    max_file_bytes: int = 20 * 1024 * 1024
    max_files: int = 50
    max_request_bytes: int = 100 * 1024 * 1024
    # Decoding a PNG allocates width x height pixels whatever its file size: a bomb limit.
    max_image_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class FrozenFile:
    """The bytes of one requested file as frozen at submission: exactly as read, except
    images, which are re-encoded from their pixels (``FileType.reencode``)."""

    path: str  # normalised relative POSIX path inside the workspace
    data: bytes
    sha256: str
    size: int
    media_type: str
    kind: str  # FileType.kind: "table", "spreadsheet", "figure", "document", "text", "notebook"
    # For a re-encoded image: the sha256 of the bytes as read, and what the re-encoding did.
    source_sha256: str = ""
    reencoded: ReencodedImage | None = None

    @property
    def read_sha256(self) -> str:
        """The sha256 of the file as the researcher wrote it (what tre.save recorded)."""
        return self.source_sha256 or self.sha256


_ALLOWED_LIST = ", ".join(sorted(ALLOWED_TYPES))


class MissingFile(Invalid):
    """The named file (or a folder on its path) does not exist."""


def _refuse(problem: str, fix: str) -> Invalid:
    return Invalid(problem, fix)


# --- paths -------------------------------------------------------------------------------


def normalise_path(rel_path: str) -> str:
    """The relative POSIX form of ``rel_path``, or :class:`Invalid` if it could leave the
    workspace or names a hidden file.

    Nothing is resolved here: this only rejects paths that are unsafe whatever the file
    system looks like. Empty and ``.`` components are dropped; ``..`` is refused rather than
    collapsed, because a researcher has no reason to write it.
    """
    fix_rel = "give the path relative to your workspace, e.g. outputs/table.csv"
    if not isinstance(rel_path, str) or not rel_path.strip():
        raise _refuse("The file path is empty.", fix_rel)
    shown = rel_path.encode("unicode_escape").decode("ascii")
    if len(rel_path) > MAX_PATH_CHARS:
        raise _refuse(f"The file path is longer than {MAX_PATH_CHARS} characters.", fix_rel)
    if "\x00" in rel_path:
        raise _refuse(f"The file path {shown} contains a NUL character.", fix_rel)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in rel_path):
        raise _refuse(
            f"The file path {shown} contains control characters.",
            "rename the file using letters, digits, '-', '_' and '.'",
        )
    if "\\" in rel_path:
        raise _refuse(
            f"The file path {shown} contains a backslash.",
            "use '/' between folders, e.g. outputs/table.csv",
        )
    if rel_path.startswith("/"):
        raise _refuse(f"The file path {shown} is absolute.", fix_rel)
    parts = [p for p in rel_path.split("/") if p not in ("", ".")]
    if not parts:
        raise _refuse(f"The file path {shown} names no file.", fix_rel)
    if ".." in parts:
        raise _refuse(
            f"The file path {shown} contains '..' and could leave your workspace.",
            "name a file inside your workspace without '..'",
        )
    for part in parts:
        if part.startswith("."):
            raise _refuse(
                f"{shown} is or is inside a hidden file or folder ({part}).",
                "copy the file to a folder whose name does not start with '.', e.g. outputs/",
            )
        if len(part) > MAX_NAME_CHARS:
            raise _refuse(f"A name in {shown} is longer than {MAX_NAME_CHARS} characters.", fix_rel)
    if parts[0].lower() == TAU_ARGUS_FOLDER:
        # tre.tau_argus writes the unsuppressed table there for a tau-ARGUS cross-check.
        raise _refuse(
            f"{shown} is tau-ARGUS input: it holds the table's unsuppressed values.",
            "export the checked table itself (tre.save writes it to outputs/)",
        )
    return "/".join(parts)


def is_sidecar(path: str) -> bool:
    return path.lower().endswith(SIDECAR_SUFFIXES)


def sidecar_paths(rel_path: str) -> dict[str, str]:
    """Where ``tre.save`` put the output record and where a DP output's description lives
    for the file ``rel_path`` (``outputs/x.csv`` -> ``outputs/x.record.json``, ``...dp.json``).
    """
    path = normalise_path(rel_path)
    folder, _, name = path.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    prefix = f"{folder}/{stem}" if folder else stem
    return {"record": f"{prefix}{RECORD_SUFFIX}", "dp": f"{prefix}{DP_SUFFIX}"}


def file_type(path: str) -> FileType:
    """The allowed type of a normalised path, by extension, or :class:`Invalid`."""
    lower = path.lower()
    if is_sidecar(lower):
        raise _refuse(
            f"{path} is the record that trenv saved next to an output; it is not exported "
            "on its own.",
            "request the table, figure or DP result itself; the airlock reads its record",
        )
    ext = suffix(lower)
    found = ALLOWED_TYPES.get(ext)
    if found is None:
        shown = f"of type {ext}" if ext else "without an extension"
        raise _refuse(
            f"{path}: files {shown} cannot leave the TRE.",
            f"export one of the allowed types ({_ALLOWED_LIST}); for example save a table "
            "as CSV with tre.save",
        )
    return found


# --- opening without following links -------------------------------------------------------


def _describe_mode(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (fifo)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


_FIX_LINK = "copy the file's content into a regular file in your workspace"
_FIX_KIND = "export a regular file from your workspace"


def _why_open_failed(err: OSError, shown: str, name: str, dir_fd: int, missing: str) -> Invalid:
    """Turn a failed ``openat`` into a researcher's reason. The ``lstat`` here only words
    the message; the refusal itself came from the kernel."""
    if err.errno == errno.ENOENT:
        return MissingFile(
            f"{missing} does not exist in your workspace.", "check the path and name"
        )
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        mode = None
    if (mode is not None and stat.S_ISLNK(mode)) or err.errno == errno.ELOOP:
        return _refuse(f"{shown} is a symbolic link.", _FIX_LINK)
    if err.errno == errno.ENOTDIR:
        return _refuse(f"{shown} is not a folder.", "check the path")
    if err.errno in (errno.EACCES, errno.EPERM):
        return _refuse(f"{shown} cannot be read.", "make the file readable and try again")
    return _refuse(f"{shown} cannot be opened ({os.strerror(err.errno or 0)}).", "check the path")


def _open_beneath(workspace: Path, path: str) -> int:
    """A read-only descriptor for the regular file ``path`` under ``workspace``, never
    following a symbolic link in any component."""
    parts = path.split("/")
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    dir_fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts[:-1]):
            shown = "/".join(parts[: i + 1])
            try:
                next_fd = os.open(part, flags_dir, dir_fd=dir_fd)
            except OSError as err:
                raise _why_open_failed(err, shown, part, dir_fd, path) from None
            os.close(dir_fd)
            dir_fd = next_fd
        name = parts[-1]
        # Refuse special files before opening them (opening some devices has side effects);
        # the fstat below re-checks the opened descriptor in case the name was swapped.
        try:
            pre = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as err:
            raise _why_open_failed(err, path, name, dir_fd, path) from None
        if not stat.S_ISREG(pre.st_mode):
            fix = _FIX_LINK if stat.S_ISLNK(pre.st_mode) else _FIX_KIND
            raise _refuse(f"{path} is {_describe_mode(pre.st_mode)}.", fix)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            return os.open(name, flags, dir_fd=dir_fd)
        except OSError as err:
            raise _why_open_failed(err, path, name, dir_fd, path) from None
    finally:
        os.close(dir_fd)


def _read_fd(fd: int, path: str, max_bytes: int) -> bytes:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(f"{path} is {_describe_mode(st.st_mode)}.", _FIX_KIND)
    if st.st_nlink > 1:
        # A second hard link means the same bytes also live somewhere else, possibly
        # outside the folders the researcher is meant to export from.
        raise _refuse(f"{path} has other hard links.", "copy the file into a new, regular file")
    too_big = _refuse(
        f"{path} is larger than the limit of {_human(max_bytes)}.",
        "export a smaller file (fewer rows, a summary table, or a compressed figure)",
    )
    if st.st_size > max_bytes:
        raise too_big
    chunks: list[bytes] = []
    remaining = max_bytes + 1
    while remaining > 0:
        block = os.read(fd, min(remaining, 1 << 20))
        if not block:
            break
        chunks.append(block)
        remaining -= len(block)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise too_big
    return data


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.3g} {unit}"


def _read_safely(workspace: Path, path: str, max_bytes: int) -> bytes:
    fd = _open_beneath(workspace, path)
    try:
        return _read_fd(fd, path, max_bytes)
    finally:
        os.close(fd)


# --- public API ----------------------------------------------------------------------------


def read_workspace_file(
    workspace: Path, rel_path: str, limits: IntakeLimits = IntakeLimits()
) -> FrozenFile:
    """Read and validate one file the researcher asked to export; :class:`Invalid` if it
    may not leave."""
    path = normalise_path(rel_path)
    ftype = file_type(path)
    data = _read_safely(Path(workspace), path, limits.max_file_bytes)
    validate_content(path, data)
    read_sha256 = hashlib.sha256(data).hexdigest()
    reencoded = None
    if ftype.reencode is not None:
        reencoded = ftype.reencode(path, data, limits.max_image_pixels)
        data = reencoded.data
    sha256 = hashlib.sha256(data).hexdigest()
    return FrozenFile(
        path=path,
        data=data,
        sha256=sha256,
        size=len(data),
        media_type=ftype.media_type,
        kind=ftype.kind,
        source_sha256=read_sha256 if reencoded is not None else "",
        reencoded=reencoded,
    )


def read_sidecar(workspace: Path, rel_path: str, max_bytes: int = 16 * 1024 * 1024) -> bytes | None:
    """The bytes of an output record (``.record.json``) or DP output (``.dp.json``) next to
    a requested file, read with the same no-link rules; ``None`` if there is none."""
    path = normalise_path(rel_path)
    if not is_sidecar(path):
        raise _refuse(
            f"{path} is not an output record.",
            f"name a file ending in {RECORD_SUFFIX} or {DP_SUFFIX}",
        )
    try:
        return _read_safely(Path(workspace), path, max_bytes)
    except MissingFile:
        return None


def check_paths(paths: Sequence[str], limits: IntakeLimits = IntakeLimits()) -> list[str]:
    """Normalise the paths of one request; refuse an empty request, too many files and
    the same file named twice (also as ``./a`` and ``a``)."""
    if not paths:
        raise _refuse("The request names no files.", "add at least one file to the request")
    if len(paths) > limits.max_files:
        raise _refuse(
            f"The request names {len(paths)} files; at most {limits.max_files} are allowed.",
            "split the request into several smaller requests",
        )
    seen: set[str] = set()
    out: list[str] = []
    for raw in paths:
        path = normalise_path(raw)
        file_type(path)
        if path in seen:
            raise _refuse(f"{path} is named twice in the request.", "name each file once")
        seen.add(path)
        out.append(path)
    return out


def read_request_files(
    workspace: Path, paths: Sequence[str], limits: IntakeLimits = IntakeLimits()
) -> list[FrozenFile]:
    """Freeze every file of a request, refusing the whole request if one file is refused
    or all together exceed ``max_request_bytes``."""
    frozen: list[FrozenFile] = []
    total = 0
    for path in check_paths(paths, limits):
        f = read_workspace_file(workspace, path, limits)
        total += f.size
        if total > limits.max_request_bytes:
            raise _too_big_request(limits)
        frozen.append(f)
    return frozen


def check_request_size(files: Sequence[FrozenFile], limits: IntakeLimits = IntakeLimits()) -> None:
    """Refuse a request whose files together are over ``max_request_bytes`` or too many."""
    if len(files) > limits.max_files:
        raise _refuse(
            f"The request names {len(files)} files; at most {limits.max_files} are allowed.",
            "split the request into several smaller requests",
        )
    if sum(f.size for f in files) > limits.max_request_bytes:
        raise _too_big_request(limits)


def _too_big_request(limits: IntakeLimits) -> Invalid:
    return _refuse(
        f"The files of this request together are larger than {_human(limits.max_request_bytes)}.",
        "split the request into several smaller requests",
    )
