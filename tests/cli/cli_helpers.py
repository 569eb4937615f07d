"""Helpers shared by the contract tests (fixtures live in conftest.py)."""

import re
from pathlib import Path

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def error_line(result):
    """The single `olreg: ` line a failure must print; fails the test otherwise."""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, f"expected one error line, got {lines!r}"
    assert lines[0].startswith("olreg: "), lines[0]
    return lines[0]


def blob_path(store, digest):
    return Path(store) / "blobs" / digest.replace(":", "-")


def corrupt(path):
    """Flips the first byte of a file."""
    data = bytearray(Path(path).read_bytes())
    data[0] ^= 0xFF
    Path(path).write_bytes(bytes(data))


def stderr_lines(result):
    return result.stderr.decode().splitlines()
