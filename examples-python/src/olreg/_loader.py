"""Finding, loading and checking the shared library (once, on first use)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import threading
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

from ._abi import ABI_VERSION, PROTOTYPES, soname
from ._errors import LibraryNotFound


class _Candidate(NamedTuple):
    origin: str  # where the path came from, for messages
    path: str  # a file path, or a bare SONAME that the dynamic loader searches for
    must_exist: bool = False


def _source_checkout() -> Optional[Path]:
    """The repository holding this package when it runs from a source checkout
    (``<repo>/examples-python/src/olreg``), not from an installed copy."""
    here = Path(__file__).resolve().parent
    repo = here.parents[2]
    if here.parent.parent.name == "examples-python" and (repo / "include" / "olreg.h").is_file():
        return repo
    return None


def _pkg_config_libdir() -> Optional[str]:
    """The ``libdir`` of olreg.pc, as pkg-config finds it (``PKG_CONFIG_PATH``
    or its default search path: where ``make install`` put the library)."""
    try:
        out = subprocess.run(
            ["pkg-config", "--variable=libdir", "olreg"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no pkg-config
    libdir = out.stdout.strip()
    return libdir if out.returncode == 0 and libdir else None


def _candidates() -> Iterator[_Candidate]:
    """The places to load the library from, lazily, in search order."""
    explicit = os.environ.get("OLREG_LIB")
    if explicit:
        yield _Candidate("$OLREG_LIB", os.path.abspath(explicit), must_exist=True)
    lib_dir = os.environ.get("OLREG_LIB_DIR")
    if lib_dir:
        yield _Candidate("$OLREG_LIB_DIR", os.path.abspath(os.path.join(lib_dir, "libolreg.so")))
    repo = _source_checkout()
    if repo is not None:
        yield _Candidate("the source checkout's build/lib", str(repo / "build" / "lib" / "libolreg.so"))
    libdir = _pkg_config_libdir()
    if libdir:
        yield _Candidate("pkg-config olreg (make install)", os.path.join(libdir, soname()))
    yield _Candidate("the dynamic loader", soname())
    # Last: find_library may run ldconfig or a compiler, and may find a copy
    # of another ABI (which is then reported as such).
    system = ctypes.util.find_library("olreg")
    if system:
        yield _Candidate("ctypes.util.find_library", system)


def _declare(lib: ctypes.CDLL, path: str, origin: str) -> None:
    """Checks the library's ABI version, then declares every prototype."""
    where = f"{path!r} (from {origin})"
    try:
        lib.olreg_version.restype = ctypes.c_char_p
        lib.olreg_version.argtypes = []
    except AttributeError as e:
        raise LibraryNotFound(f"olreg: {where} is not libolreg: it lacks olreg_version") from e
    got = lib.olreg_version().decode("utf-8", "replace")
    try:
        major, minor = (int(x) for x in got.split(".")[:2])
    except ValueError as e:
        raise LibraryNotFound(f"olreg: {where} reports an odd version {got!r}") from e
    # The ABI generation: the major version, or the minor one while the major is 0.
    if major != ABI_VERSION[0] or (major == 0 and minor != ABI_VERSION[1]):
        want = f"{ABI_VERSION[0]}.{ABI_VERSION[1]}.x" if ABI_VERSION[0] == 0 else \
            f"{ABI_VERSION[0]}.x"
        raise LibraryNotFound(
            f"olreg: {where} is version {got}, an incompatible ABI: these bindings were "
            f"written for olreg {want} ({soname()}); install that library or bindings "
            f"matching {got}"
        )
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise LibraryNotFound(f"olreg: {where} lacks {name}") from e
        fn.restype = restype
        fn.argtypes = argtypes


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def _mapped_file(lib: ctypes.CDLL, fallback: str) -> str:
    """The file the dynamic loader mapped for ``lib`` (dladdr): the path it
    found for a bare SONAME. ``fallback`` where dladdr is not available."""
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except AttributeError:
        return fallback
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    symbol = ctypes.cast(lib.olreg_version, ctypes.c_void_p)
    if dladdr(symbol, ctypes.byref(info)) and info.dli_fname:
        return os.fsdecode(info.dli_fname)
    return fallback


def _not_installed(error: OSError) -> bool:
    """Whether dlopen of a bare SONAME failed only because nothing has it."""
    return "cannot open shared object file" in str(error)


def _load() -> tuple[ctypes.CDLL, str]:
    """Finds, loads and checks the library: the first candidate that exists
    must load (a broken or incompatible library is reported, not skipped)."""
    tried: list[str] = []
    for origin, path, must_exist in _candidates():
        is_file = os.sep in path
        if is_file and not os.path.exists(path):
            if must_exist:
                raise LibraryNotFound(f"olreg: {origin} is {path!r}, which does not exist")
            tried.append(f"{path} ({origin}: no such file)")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            if not is_file and _not_installed(e):
                tried.append(f"{path} ({origin}: not found)")
                continue
            raise LibraryNotFound(f"olreg: cannot load {path!r} (from {origin}): {e}") from e
        _declare(lib, path, origin)
        return lib, _mapped_file(lib, path)
    raise LibraryNotFound(
        "olreg: the shared library was not found: build it with `make lib` in a checkout, "
        "install it with `make install` (found through pkg-config or the dynamic loader), "
        "or set OLREG_LIB to its path. Tried: " + "; ".join(tried)
    )


_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None
_lib_lock = threading.Lock()


def library() -> ctypes.CDLL:
    """The loaded library (loaded on first use, once)."""
    global _lib, _lib_path
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                _lib, _lib_path = _load()
    return _lib


def library_path() -> str:
    """The path of the shared library file in use."""
    library()
    assert _lib_path is not None
    return _lib_path


def version() -> str:
    """The shared library's version, ``MAJOR.MINOR.PATCH``."""
    return str(library().olreg_version().decode())


def status_name(status: int) -> Optional[str]:
    """olreg's C name of a status number (``"OLREG_NOT_FOUND"``), or None for
    a number that is none."""
    raw = library().olreg_status_name(status)
    return None if raw is None else str(raw.decode())


def status_str(status: int) -> str:
    """olreg's static English description of a status number
    (``"unknown status"`` for a number that is none)."""
    return str(library().olreg_status_str(status).decode())
