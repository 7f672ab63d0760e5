"""What the images' Python is, so wheels are chosen for it and not for the host's Python.

The notebook image runs Debian bookworm's python3 (3.11.2, glibc 2.36, x86_64). The host may
run another Python, so every ``pip download`` names the target explicitly.
"""

from __future__ import annotations

PYTHON_VERSION = "3.11.2"
IMPLEMENTATION = "cp"
ABI = "cp311"
# Every manylinux tag that bookworm's glibc 2.36 accepts, newest first. pip needs them all
# listed: a package that only publishes manylinux_2_28 wheels would otherwise not resolve.
PLATFORMS: tuple[str, ...] = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)


def pip_target_args() -> list[str]:
    """``pip download`` arguments restricting it to wheels the image's Python can install."""
    args = [
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        IMPLEMENTATION,
        "--abi",
        ABI,
        # Pure-Python wheels declare the "none" ABI; without it pip refuses them.
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args
