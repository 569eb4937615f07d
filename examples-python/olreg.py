"""Python bindings for olreg, through its C ABI (``olreg.h``), with ctypes only.

olreg pulls and pushes Ollama models (a manifest plus content-addressed blobs)
between registries and Ollama's on-disk model store.

Example::

    import olreg

    with olreg.Client(models_dir="/tmp/models") as client:
        def show(p: olreg.Progress) -> None:
            print(p.event.name, p.completed, "/", p.total)
        manifest = client.pull("http://127.0.0.1:5000/library/tiny:latest", progress=show)
        print(manifest.digest, manifest.total_size)
        print(client.list())

The shared library is found, in this order, at ``$OLREG_LIB`` (a file path),
``$OLREG_LIB_DIR/libolreg.so``, ``build/lib/libolreg.so`` of the repository
this file lives in, then wherever ``ctypes.util.find_library("olreg")`` finds
it. It is loaded on first use (``import olreg`` never fails for want of it).

Threading: a :class:`Client` may be shared by any number of threads. Every
blocking call releases the GIL while it runs in C (ctypes does so for
``CDLL`` functions); progress and log callbacks run on the thread that made
the call and hold the GIL while they run.

Callbacks: a progress callback returning ``False`` cancels the call (which
then raises :class:`Cancelled`); returning ``None`` or ``True`` continues.
An exception raised by a progress callback cancels the call, and that very
exception is re-raised by the method once the C call has returned. An
exception raised by the log callback cannot cancel anything (logging is
advisory) but is not lost either: the method during which it happened
re-raises it after the operation ends. Callbacks must not call back into the
client (olreg answers that with :class:`Reentrant`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import enum
import os
import threading
from pathlib import Path
import builtins
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, TypeVar, Union

__all__ = [
    "ABI_VERSION",
    "Cancelled",
    "CancelToken",
    "Client",
    "DigestMismatch",
    "Event",
    "FileSystemError",
    "HTTPError",
    "InternalError",
    "InvalidArgument",
    "InvalidDigest",
    "InvalidManifest",
    "InvalidName",
    "Layer",
    "LibraryNotFound",
    "LogLevel",
    "Manifest",
    "NetworkError",
    "NoSpace",
    "NotFound",
    "NullArgument",
    "OlregError",
    "Progress",
    "ProtocolError",
    "Reentrant",
    "Retries",
    "SizeMismatch",
    "Status",
    "Unauthorized",
    "library_path",
    "status_str",
    "version",
]

#: The (major, minor) of the C ABI these bindings were written for.
ABI_VERSION: tuple[int, int] = (0, 1)

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


# --------------------------------------------------------------------------
# Constants (the OLREG_* values of olreg.h; their numbers never change)
# --------------------------------------------------------------------------


class Status(enum.IntEnum):
    """``olreg_status`` values."""

    OK = 0
    NULL_ARGUMENT = 1
    INVALID_ARGUMENT = 2
    INVALID_NAME = 3
    INVALID_DIGEST = 4
    NOT_FOUND = 5
    UNAUTHORIZED = 6
    INVALID_MANIFEST = 7
    HTTP = 8
    NETWORK = 9
    PROTOCOL = 10
    DIGEST_MISMATCH = 11
    SIZE_MISMATCH = 12
    IO = 13
    NO_SPACE = 14
    CANCELLED = 15
    REENTRANT = 16
    PANIC = 17


class Event(enum.IntEnum):
    """``OLREG_EVENT_*``: the kind of a progress event."""

    RESOLVED = 1
    QUEUED = 2
    STARTED = 3
    BYTES = 4
    CACHED = 5
    VERIFYING = 6
    DONE = 7
    FAILED = 8
    RETRYING = 9
    WAITING = 10
    FINISHED = 11


class LogLevel(enum.IntEnum):
    """``OLREG_LOG_*``: the severity of a log line."""

    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class OlregError(Exception):
    """A failed olreg call.

    Attributes:
        status: the :class:`Status` (or the raw number if this module does not
            know it).
        message: olreg's full message (model, blob and cause).
        http_status: the HTTP status of the registry answer that caused the
            error, or 0 when it did not come from an HTTP answer.
        registry_code: the registry's error code (``MANIFEST_UNKNOWN``, …),
            or None when it sent none.
    """

    def __init__(
        self,
        status: Union[Status, int],
        message: str,
        http_status: int = 0,
        registry_code: Optional[str] = None,
    ) -> None:
        super().__init__(status, message, http_status, registry_code)
        try:
            self.status: Union[Status, int] = Status(status)
        except ValueError:
            self.status = status
        self.message = message
        self.http_status = http_status
        self.registry_code = registry_code

    def __str__(self) -> str:
        name = self.status.name if isinstance(self.status, Status) else str(self.status)
        text = f"{self.message} [{name}"
        if self.http_status:
            text += f", HTTP {self.http_status}"
        if self.registry_code:
            text += f", {self.registry_code}"
        return text + "]"


class NullArgument(OlregError):
    """OLREG_NULL_ARGUMENT: a required argument was missing (a bug in these bindings)."""


class InvalidArgument(OlregError, ValueError):
    """OLREG_INVALID_ARGUMENT: an argument or option is out of range or malformed."""


class InvalidName(OlregError, ValueError):
    """OLREG_INVALID_NAME: not ``[scheme://][host/][namespace/]model[:tag][@digest]``."""


class InvalidDigest(OlregError, ValueError):
    """OLREG_INVALID_DIGEST: not ``sha256:`` and 64 lowercase hex digits."""


class NotFound(OlregError):
    """OLREG_NOT_FOUND: no such model, manifest or blob (locally or on the registry)."""


class Unauthorized(OlregError):
    """OLREG_UNAUTHORIZED: the registry refused or wanted credentials."""


class InvalidManifest(OlregError):
    """OLREG_INVALID_MANIFEST: a manifest cannot be used."""


class HTTPError(OlregError):
    """OLREG_HTTP: any other error answer from a registry (see ``http_status``)."""


class NetworkError(OlregError):
    """OLREG_NETWORK: the connection failed, stalled or broke after every retry."""


class ProtocolError(OlregError):
    """OLREG_PROTOCOL: a peer broke the protocol."""


class DigestMismatch(OlregError):
    """OLREG_DIGEST_MISMATCH: bytes do not hash to the digest they were fetched as."""


class SizeMismatch(OlregError):
    """OLREG_SIZE_MISMATCH: a local blob's size differs from its manifest's."""


class FileSystemError(OlregError):
    """OLREG_IO: a file-system operation failed; the message names the path."""


class NoSpace(OlregError):
    """OLREG_NO_SPACE: the store's file system is full or too small."""


class Cancelled(OlregError):
    """OLREG_CANCELLED: cancelled by a :class:`CancelToken` or a progress callback."""


class Reentrant(OlregError):
    """OLREG_REENTRANT: a blocking olreg call was made from inside a callback."""


class InternalError(OlregError):
    """OLREG_PANIC: a bug inside olreg (a caught panic). Please report it."""


class LibraryNotFound(OSError):
    """The olreg shared library could not be found, loaded or is incompatible."""


_ERROR_CLASSES: dict[int, type[OlregError]] = {
    Status.NULL_ARGUMENT: NullArgument,
    Status.INVALID_ARGUMENT: InvalidArgument,
    Status.INVALID_NAME: InvalidName,
    Status.INVALID_DIGEST: InvalidDigest,
    Status.NOT_FOUND: NotFound,
    Status.UNAUTHORIZED: Unauthorized,
    Status.INVALID_MANIFEST: InvalidManifest,
    Status.HTTP: HTTPError,
    Status.NETWORK: NetworkError,
    Status.PROTOCOL: ProtocolError,
    Status.DIGEST_MISMATCH: DigestMismatch,
    Status.SIZE_MISMATCH: SizeMismatch,
    Status.IO: FileSystemError,
    Status.NO_SPACE: NoSpace,
    Status.CANCELLED: Cancelled,
    Status.REENTRANT: Reentrant,
    Status.PANIC: InternalError,
}


def _make_error(
    status: int, message: str, http_status: int = 0, registry_code: Optional[str] = None
) -> OlregError:
    cls = _ERROR_CLASSES.get(status, OlregError)
    return cls(status, message, http_status, registry_code)


# --------------------------------------------------------------------------
# C types
# --------------------------------------------------------------------------


class _olreg_cancel(ctypes.Structure):
    """Opaque ``olreg_cancel``."""


class _olreg_client(ctypes.Structure):
    """Opaque ``olreg_client``."""


class _olreg_error(ctypes.Structure):
    """Opaque ``olreg_error``."""


class _olreg_manifest(ctypes.Structure):
    """Opaque ``olreg_manifest``."""


class _olreg_options(ctypes.Structure):
    """Opaque ``olreg_options``."""


class _olreg_string_list(ctypes.Structure):
    """Opaque ``olreg_string_list``."""


_CancelPtr = ctypes.POINTER(_olreg_cancel)
_ClientPtr = ctypes.POINTER(_olreg_client)
_ErrorPtr = ctypes.POINTER(_olreg_error)
_ManifestPtr = ctypes.POINTER(_olreg_manifest)
_OptionsPtr = ctypes.POINTER(_olreg_options)
_StringListPtr = ctypes.POINTER(_olreg_string_list)
_CharPtr = ctypes.POINTER(ctypes.c_char)  # an owned or length-delimited char*

_status_t = ctypes.c_int32
_event_t = ctypes.c_int32
_log_level_t = ctypes.c_int32


class _olreg_progress(ctypes.Structure):
    """``struct olreg_progress`` (borrowed by the callback for its duration)."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("event", _event_t),
        ("index", ctypes.c_uint32),
        ("digest", ctypes.c_char_p),
        ("media_type", ctypes.c_char_p),
        ("message", ctypes.c_char_p),
        ("layer_completed", ctypes.c_uint64),
        ("layer_total", ctypes.c_uint64),
        ("completed", ctypes.c_uint64),
        ("total", ctypes.c_uint64),
        ("layers_done", ctypes.c_uint32),
        ("layers_total", ctypes.c_uint32),
    ]


# int (*olreg_progress_cb)(void *user_data, const struct olreg_progress *progress)
_PROGRESS_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_olreg_progress))
# void (*olreg_log_cb)(void *user_data, olreg_log_level level, const char *message)
_LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, _log_level_t, ctypes.c_char_p)

_E = ctypes.POINTER(_ErrorPtr)  # olreg_error **err

# name: (restype, argtypes), exactly as in olreg.h.
_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "olreg_cancel_new": (_status_t, [ctypes.POINTER(_CancelPtr)]),
    "olreg_cancel_cancel": (_status_t, [_CancelPtr]),
    "olreg_cancel_is_cancelled": (ctypes.c_bool, [_CancelPtr]),
    "olreg_cancel_free": (None, [_CancelPtr]),
    "olreg_client_new": (_status_t, [_OptionsPtr, ctypes.POINTER(_ClientPtr), _E]),
    "olreg_client_free": (None, [_ClientPtr]),
    "olreg_pull": (
        _status_t,
        [_ClientPtr, ctypes.c_char_p, _PROGRESS_CB, ctypes.c_void_p, _CancelPtr,
         ctypes.POINTER(_ManifestPtr), _E],
    ),
    "olreg_push": (
        _status_t,
        [_ClientPtr, ctypes.c_char_p, ctypes.c_char_p, _PROGRESS_CB, ctypes.c_void_p,
         _CancelPtr, _E],
    ),
    "olreg_resolve": (
        _status_t,
        [_ClientPtr, ctypes.c_char_p, _CancelPtr, ctypes.POINTER(_ManifestPtr), _E],
    ),
    "olreg_list": (_status_t, [_ClientPtr, ctypes.POINTER(_StringListPtr), _E]),
    "olreg_show": (
        _status_t,
        [_ClientPtr, ctypes.c_char_p, ctypes.POINTER(_CharPtr),
         ctypes.POINTER(ctypes.c_size_t), _E],
    ),
    "olreg_remove": (_status_t, [_ClientPtr, ctypes.c_char_p, _E]),
    "olreg_prune": (
        _status_t,
        [_ClientPtr, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64), _E],
    ),
    "olreg_verify": (
        _status_t,
        [_ClientPtr, ctypes.c_char_p, _PROGRESS_CB, ctypes.c_void_p, _CancelPtr,
         ctypes.POINTER(_StringListPtr), _E],
    ),
    "olreg_error_status": (_status_t, [_ErrorPtr]),
    "olreg_error_message": (ctypes.c_char_p, [_ErrorPtr]),
    "olreg_error_http_status": (ctypes.c_uint16, [_ErrorPtr]),
    "olreg_error_registry_code": (ctypes.c_char_p, [_ErrorPtr]),
    "olreg_error_free": (None, [_ErrorPtr]),
    "olreg_manifest_digest": (ctypes.c_char_p, [_ManifestPtr]),
    "olreg_manifest_bytes": (_CharPtr, [_ManifestPtr, ctypes.POINTER(ctypes.c_size_t)]),
    "olreg_manifest_layer_count": (ctypes.c_size_t, [_ManifestPtr]),
    "olreg_manifest_layer_digest": (ctypes.c_char_p, [_ManifestPtr, ctypes.c_size_t]),
    "olreg_manifest_layer_media_type": (ctypes.c_char_p, [_ManifestPtr, ctypes.c_size_t]),
    "olreg_manifest_layer_size": (ctypes.c_uint64, [_ManifestPtr, ctypes.c_size_t]),
    "olreg_manifest_total_size": (ctypes.c_uint64, [_ManifestPtr]),
    "olreg_manifest_free": (None, [_ManifestPtr]),
    "olreg_options_new": (_status_t, [ctypes.POINTER(_OptionsPtr)]),
    "olreg_options_free": (None, [_OptionsPtr]),
    "olreg_options_set_models_dir": (_status_t, [_OptionsPtr, ctypes.c_char_p]),
    "olreg_options_set_name_mask": (_status_t, [_OptionsPtr, ctypes.c_char_p]),
    "olreg_options_set_key_file": (_status_t, [_OptionsPtr, ctypes.c_char_p]),
    "olreg_options_set_streams": (_status_t, [_OptionsPtr, ctypes.c_uint32]),
    "olreg_options_set_chunking": (_status_t, [_OptionsPtr, ctypes.c_uint64, ctypes.c_uint64]),
    "olreg_options_set_upload_chunk_size": (_status_t, [_OptionsPtr, ctypes.c_uint64]),
    "olreg_options_set_user_agent": (_status_t, [_OptionsPtr, ctypes.c_char_p]),
    "olreg_options_set_timeouts": (_status_t, [_OptionsPtr, ctypes.c_uint32, ctypes.c_uint32]),
    "olreg_options_set_retries": (
        _status_t, [_OptionsPtr, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32]),
    "olreg_options_set_proxy": (_status_t, [_OptionsPtr, ctypes.c_char_p]),
    "olreg_options_add_ca_file": (_status_t, [_OptionsPtr, ctypes.c_char_p]),
    # The PEM is passed with its length (it need not be NUL-terminated).
    "olreg_options_add_ca_pem": (_status_t, [_OptionsPtr, ctypes.c_char_p, ctypes.c_size_t]),
    "olreg_options_set_insecure": (_status_t, [_OptionsPtr, ctypes.c_bool]),
    "olreg_options_add_credential": (
        _status_t, [_OptionsPtr, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]),
    "olreg_options_set_docker_config": (_status_t, [_OptionsPtr, ctypes.c_char_p]),
    "olreg_options_add_mirror": (_status_t, [_OptionsPtr, ctypes.c_char_p]),
    "olreg_options_set_limits": (
        _status_t, [_OptionsPtr, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint32]),
    "olreg_options_set_log_callback": (
        _status_t, [_OptionsPtr, _LOG_CB, ctypes.c_void_p, _log_level_t]),
    "olreg_status_str": (ctypes.c_char_p, [_status_t]),
    "olreg_version": (ctypes.c_char_p, []),
    "olreg_string_free": (None, [_CharPtr]),
    "olreg_string_list_len": (ctypes.c_size_t, [_StringListPtr]),
    "olreg_string_list_get": (ctypes.c_char_p, [_StringListPtr, ctypes.c_size_t]),
    "olreg_string_list_free": (None, [_StringListPtr]),
}


# --------------------------------------------------------------------------
# Loading the library
# --------------------------------------------------------------------------

_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None
_lib_lock = threading.Lock()


def _candidates() -> Iterator[tuple[str, str, bool]]:
    """(where it came from, path, must exist), lazily, in search order."""
    explicit = os.environ.get("OLREG_LIB")
    if explicit:
        yield "$OLREG_LIB", os.path.abspath(explicit), True
    lib_dir = os.environ.get("OLREG_LIB_DIR")
    if lib_dir:
        yield "$OLREG_LIB_DIR", os.path.abspath(os.path.join(lib_dir, "libolreg.so")), False
    repo_build = Path(__file__).resolve().parent.parent / "build" / "lib" / "libolreg.so"
    yield "the repository's build/lib", str(repo_build), False
    # Last: find_library may run ldconfig or a compiler.
    system = ctypes.util.find_library("olreg")
    if system:
        yield "ctypes.util.find_library", system, False


def _declare(lib: ctypes.CDLL, path: str, origin: str) -> None:
    """Checks the library's version, then declares every prototype."""
    lib.olreg_version.restype = ctypes.c_char_p
    lib.olreg_version.argtypes = []
    got = lib.olreg_version().decode()
    try:
        major, minor = (int(x) for x in got.split(".")[:2])
    except ValueError as e:
        raise LibraryNotFound(f"olreg: {path!r} reports an odd version {got!r}") from e
    if major != ABI_VERSION[0] or (major == 0 and minor != ABI_VERSION[1]):
        raise LibraryNotFound(
            f"olreg: {path!r} (from {origin}) is version {got}; these bindings need "
            f"{ABI_VERSION[0]}.{ABI_VERSION[1]}.x"
        )
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise LibraryNotFound(f"olreg: {path!r} (from {origin}) lacks {name}") from e
        fn.restype = restype
        fn.argtypes = argtypes


def _load() -> tuple[ctypes.CDLL, str]:
    """Finds, loads and checks the library: the first candidate that exists
    must load (a broken library is reported, not skipped)."""
    tried: list[str] = []
    for origin, path, must_exist in _candidates():
        # find_library gives a bare soname ("libolreg.so.0.1"): dlopen searches.
        if os.sep in path and not os.path.exists(path):
            if must_exist:
                raise LibraryNotFound(f"olreg: {origin} is {path!r}, which does not exist")
            tried.append(f"{path} ({origin}: no such file)")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            raise LibraryNotFound(f"olreg: cannot load {path!r} (from {origin}): {e}") from e
        _declare(lib, path, origin)
        return lib, path
    tried.append('ctypes.util.find_library("olreg") (nothing)')
    raise LibraryNotFound(
        "olreg: the shared library libolreg.so was not found; build it with `make lib` "
        "at the repository root, or set OLREG_LIB to its path. Tried: " + "; ".join(tried)
    )


def _library() -> ctypes.CDLL:
    """The loaded library (loaded on first use, once)."""
    global _lib, _lib_path
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                _lib, _lib_path = _load()
    return _lib


def library_path() -> str:
    """The path (or soname) the shared library was loaded from."""
    _library()
    assert _lib_path is not None
    return _lib_path


def version() -> str:
    """The shared library's version, ``MAJOR.MINOR.PATCH``."""
    return str(_library().olreg_version().decode())


def status_str(status: int) -> str:
    """olreg's static English description of a status number."""
    return str(_library().olreg_status_str(status).decode())


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _text(value: str, what: str, status: Status = Status.INVALID_ARGUMENT) -> bytes:
    """A str as a NUL-free UTF-8 C string (a NUL would silently cut it short)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise _make_error(status, f"{what} contains a NUL character: {value!r}")
    return value.encode("utf-8")


def _path(value: PathLike, what: str) -> bytes:
    """A path-like as a NUL-free C string (file-system encoding)."""
    raw = os.fsencode(value)
    if b"\0" in raw:
        raise _make_error(Status.INVALID_ARGUMENT, f"{what} contains a NUL character")
    return raw


def _decode(raw: Optional[bytes]) -> Optional[str]:
    return None if raw is None else raw.decode("utf-8", "replace")


def _take_error(lib: ctypes.CDLL, status: int, err: Any) -> OlregError:
    """Builds an OlregError from a status and an ``olreg_error*`` (freed here)."""
    if not err:
        return _make_error(status, lib.olreg_status_str(status).decode())
    try:
        message = _decode(lib.olreg_error_message(err)) or lib.olreg_status_str(status).decode()
        http_status = int(lib.olreg_error_http_status(err))
        code = _decode(lib.olreg_error_registry_code(err))
    finally:
        lib.olreg_error_free(err)
    return _make_error(status, message, http_status, code)


def _check(lib: ctypes.CDLL, status: int, err: Any = None) -> None:
    """Raises for a non-OK status; always frees ``err``."""
    if status != Status.OK:
        raise _take_error(lib, status, err)
    if err:  # not expected on success, but never leak it
        lib.olreg_error_free(err)


def _take_strings(lib: ctypes.CDLL, lst: Any) -> list[str]:
    """Copies an ``olreg_string_list*`` into a list and frees it."""
    try:
        n = lib.olreg_string_list_len(lst)
        out: list[str] = []
        for i in range(n):
            item = lib.olreg_string_list_get(lst, i)
            out.append(_decode(item) or "")
        return out
    finally:
        lib.olreg_string_list_free(lst)


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Progress:
    """One progress event, copied out of the borrowed C struct.

    Byte counts are 0 when unknown; ``digest`` is None for whole-operation
    events (RESOLVED, FINISHED); ``message`` is set for FAILED and RETRYING.
    """

    event: Union[Event, int]
    digest: Optional[str]
    media_type: str
    message: Optional[str]
    index: int
    layer_completed: int
    layer_total: int
    completed: int
    total: int
    layers_done: int
    layers_total: int

    @classmethod
    def _from_c(cls, p: _olreg_progress) -> "Progress":
        """Copies the fields the library filled in (``struct_size`` bounds them)."""
        size = p.struct_size

        def get(name: str, default: Any) -> Any:
            field = getattr(_olreg_progress, name)
            return getattr(p, name) if field.offset + field.size <= size else default

        raw_event = get("event", 0)
        try:
            event: Union[Event, int] = Event(raw_event)
        except ValueError:
            event = raw_event  # an event kind newer than these bindings
        return cls(
            event=event,
            digest=_decode(get("digest", None)),
            media_type=_decode(get("media_type", None)) or "",
            message=_decode(get("message", None)),
            index=get("index", 0),
            layer_completed=get("layer_completed", 0),
            layer_total=get("layer_total", 0),
            completed=get("completed", 0),
            total=get("total", 0),
            layers_done=get("layers_done", 0),
            layers_total=get("layers_total", 0),
        )


class Layer(NamedTuple):
    """One layer of a manifest: ``(digest, media_type, size)``."""

    digest: str
    media_type: str
    size: int


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A manifest: its exact bytes, their digest, its layers (config not
    included) and the total size of every distinct blob (config included)."""

    digest: str
    bytes: bytes
    layers: list[Layer]
    total_size: int

    def json(self) -> Any:
        """The manifest parsed as JSON."""
        import json

        return json.loads(self.bytes)

    @classmethod
    def _take(cls, lib: ctypes.CDLL, m: Any) -> "Manifest":
        """Copies an ``olreg_manifest*`` and frees it."""
        try:
            n = ctypes.c_size_t(0)
            ptr = lib.olreg_manifest_bytes(m, ctypes.byref(n))
            data = ctypes.string_at(ptr, n.value) if ptr else b""
            layers = [
                Layer(
                    digest=_decode(lib.olreg_manifest_layer_digest(m, i)) or "",
                    media_type=_decode(lib.olreg_manifest_layer_media_type(m, i)) or "",
                    size=int(lib.olreg_manifest_layer_size(m, i)),
                )
                for i in range(lib.olreg_manifest_layer_count(m))
            ]
            return cls(
                digest=_decode(lib.olreg_manifest_digest(m)) or "",
                bytes=data,
                layers=layers,
                total_size=int(lib.olreg_manifest_total_size(m)),
            )
        finally:
            lib.olreg_manifest_free(m)


@dataclasses.dataclass(frozen=True)
class Retries:
    """Retry policy: attempts in all (the first included; 1 = no retries),
    and the first and longest backoff in seconds (olreg's defaults: 6, 0.25, 30)."""

    attempts: int
    base_delay: float = 0.25
    max_delay: float = 30.0


def _ms(seconds: float, what: str) -> int:
    """Seconds as a positive uint32 of milliseconds."""
    if seconds < 0:
        raise ValueError(f"{what} must not be negative")
    ms = int(round(seconds * 1000))
    if seconds > 0 and ms == 0:
        ms = 1  # 0 would mean "the default"
    if ms > 0xFFFFFFFF:
        raise ValueError(f"{what} is too long")
    return ms


# --------------------------------------------------------------------------
# Cancel tokens
# --------------------------------------------------------------------------


class CancelToken:
    """Cancels olreg calls from another thread.

    Pass it as ``cancel=`` to any number of calls; :meth:`cancel` (from any
    thread, any number of times) makes them raise :class:`Cancelled` promptly,
    including calls started later with this token. Free it with :meth:`close`
    (or a ``with`` block, or let it be garbage collected).
    """

    def __init__(self) -> None:
        lib = _library()
        self._lib = lib
        self._lock = threading.Lock()
        self._uses = 0
        ptr = _CancelPtr()
        _check(lib, lib.olreg_cancel_new(ctypes.byref(ptr)))
        self._ptr: Any = ptr

    def cancel(self) -> None:
        """Cancels every call using this token. Safe from any thread."""
        with self._lock:
            if not self._ptr:
                raise ValueError("the cancel token is closed")
            _check(self._lib, self._lib.olreg_cancel_cancel(self._ptr))

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        with self._lock:
            return bool(self._ptr) and bool(self._lib.olreg_cancel_is_cancelled(self._ptr))

    def _acquire(self) -> Any:
        with self._lock:
            if not self._ptr:
                raise ValueError("the cancel token is closed")
            self._uses += 1
            return self._ptr

    def _release(self) -> None:
        with self._lock:
            self._uses -= 1

    def close(self) -> None:
        """Frees the token. Raises RuntimeError while a call still uses it."""
        with self._lock:
            if self._uses:
                raise RuntimeError("the cancel token is in use by a running call")
            ptr, self._ptr = self._ptr, _CancelPtr()
        if ptr:
            self._lib.olreg_cancel_free(ptr)

    def __enter__(self) -> "CancelToken":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# --------------------------------------------------------------------------
# Callback bridges
# --------------------------------------------------------------------------

ProgressCallback = Callable[[Progress], Optional[bool]]
LogCallback = Callable[[LogLevel, str], None]


class _ProgressBridge:
    """Owns the CFUNCTYPE trampoline of one call and what the callback raised.

    The trampoline object must stay referenced until the C call returns;
    the caller keeps this bridge in a local variable for exactly that.
    """

    def __init__(self, callback: Optional[ProgressCallback]) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"progress must be callable, not {type(callback).__name__}")
        self.callback = callback
        self.exception: Optional[BaseException] = None
        # Installed even without a user callback: Python runs signal handlers
        # (Ctrl-C's KeyboardInterrupt) only while it runs Python code, so the
        # trampoline lets Ctrl-C cancel a pull at its next progress event.
        self.c_callback = _PROGRESS_CB(self._trampoline)

    def _trampoline(self, _user_data: Optional[int], p: Any) -> int:
        if self.exception is not None:
            return 1
        try:
            if self.callback is None:
                return 0
            result = self.callback(Progress._from_c(p.contents))
            return 1 if result is False else 0
        except BaseException as e:  # noqa: BLE001 - re-raised after the C call
            self.exception = e
            return 1


class _LogBridge:
    """The client's log trampoline; exceptions are kept per calling thread."""

    def __init__(self, callback: LogCallback) -> None:
        if not callable(callback):
            raise TypeError(f"log must be callable, not {type(callback).__name__}")
        self.callback = callback
        self.pending = threading.local()
        self.c_callback = _LOG_CB(self._trampoline)

    def _trampoline(self, _user_data: Optional[int], level: int, message: Optional[bytes]) -> None:
        try:
            try:
                lvl: Union[LogLevel, int] = LogLevel(level)
            except ValueError:
                lvl = level
            self.callback(lvl, _decode(message) or "")  # type: ignore[arg-type]
        except BaseException as e:  # noqa: BLE001 - re-raised after the C call
            if getattr(self.pending, "exception", None) is None:
                self.pending.exception = e

    def take(self) -> Optional[BaseException]:
        e = getattr(self.pending, "exception", None)
        self.pending.exception = None
        return e


_UNSET: Any = ...
_T = TypeVar("_T")


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------


class Client:
    """An olreg client bound to one model store.

    Every argument is optional; None keeps olreg's default (see
    ``olreg_options_new`` in olreg.h: ``$OLLAMA_MODELS`` or
    ``~/.ollama/models``, ``~/.ollama/id_ed25519`` if present, …).

    Args:
        models_dir: the store root.
        name_mask: completes names, e.g. ``http://127.0.0.1:5000/library/_:latest``.
        key_file: an OpenSSH Ed25519 key to sign requests with.
        no_key: make every request anonymous, even if the default key exists.
        streams: parallel requests per call (at least 1).
        chunk_threshold, chunk_size: blobs over the threshold download in
            ranged chunks of chunk_size bytes (defaults 128 MiB and 8 MiB).
        user_agent: the User-Agent header.
        connect_timeout, stall_timeout: seconds (default 30 each).
        retries: attempts per request (an int), or a :class:`Retries`.
        proxy: a proxy URL for every request (NO_PROXY still applies).
        ca_pem: extra trusted CA certificates, PEM text (str or bytes).
        insecure: accept any TLS certificate.
        credentials: ``(host, user, password)`` triples.
        docker_config: a Docker config.json to read credentials from; None
            reads none; left out, the default location is used.
        mirrors: mirror specs, ``URL`` or ``HOST=URL``.
        log: called as ``log(level, message)`` for each log line at
            ``log_level`` or more severe, on the thread of the call that
            produced it (so possibly several threads at once).
        log_level: the least severe level passed to ``log``.
        ca_file: a PEM file of extra trusted CA certificates.
        upload_chunk_size: PATCH piece size for upload sessions.
        limits: ``(max_manifest_bytes, max_blob_size, max_layers)``; 0 keeps a default.

    Raises:
        OlregError: a bad option (InvalidArgument, InvalidName for the mask),
            an unreadable key, or an I/O error.
        LibraryNotFound: the shared library cannot be loaded.
    """

    def __init__(
        self,
        models_dir: Optional[PathLike] = None,
        name_mask: Optional[str] = None,
        key_file: Optional[PathLike] = None,
        no_key: bool = False,
        streams: Optional[int] = None,
        chunk_threshold: Optional[int] = None,
        chunk_size: Optional[int] = None,
        user_agent: Optional[str] = None,
        connect_timeout: Optional[float] = None,
        stall_timeout: Optional[float] = None,
        retries: Optional[Union[int, Retries]] = None,
        proxy: Optional[str] = None,
        ca_pem: Optional[Union[str, bytes]] = None,
        insecure: bool = False,
        credentials: Iterable[tuple[str, str, str]] = (),
        docker_config: Optional[PathLike] = _UNSET,
        mirrors: Iterable[str] = (),
        log: Optional[LogCallback] = None,
        *,
        log_level: LogLevel = LogLevel.INFO,
        ca_file: Optional[PathLike] = None,
        upload_chunk_size: Optional[int] = None,
        limits: Optional[tuple[int, int, int]] = None,
    ) -> None:
        # Set first so that close()/__del__ work whatever happens below.
        self._ptr: Any = None
        self._cond = threading.Condition()
        self._running: dict[int, int] = {}  # thread id -> calls in flight
        self._closed = False
        self._log: Optional[_LogBridge] = None

        if key_file is not None and no_key:
            raise ValueError("key_file and no_key=True exclude each other")
        lib = _library()
        self._lib = lib
        opts = _OptionsPtr()
        _check(lib, lib.olreg_options_new(ctypes.byref(opts)))
        try:
            def put(status: int) -> None:
                _check(lib, status)

            if models_dir is not None:
                put(lib.olreg_options_set_models_dir(opts, _path(models_dir, "models_dir")))
            if name_mask is not None:
                put(lib.olreg_options_set_name_mask(
                    opts, _text(name_mask, "name_mask", Status.INVALID_NAME)))
            if key_file is not None:
                put(lib.olreg_options_set_key_file(opts, _path(key_file, "key_file")))
            if no_key:
                put(lib.olreg_options_set_key_file(opts, None))
            if streams is not None:
                put(lib.olreg_options_set_streams(opts, _uint(streams, 32, "streams")))
            if chunk_threshold is not None or chunk_size is not None:
                put(lib.olreg_options_set_chunking(
                    opts,
                    _uint(128 << 20 if chunk_threshold is None else chunk_threshold, 64,
                          "chunk_threshold"),
                    _uint(8 << 20 if chunk_size is None else chunk_size, 64, "chunk_size"),
                ))
            if upload_chunk_size is not None:
                put(lib.olreg_options_set_upload_chunk_size(
                    opts, _uint(upload_chunk_size, 64, "upload_chunk_size")))
            if user_agent is not None:
                put(lib.olreg_options_set_user_agent(opts, _text(user_agent, "user_agent")))
            if connect_timeout is not None or stall_timeout is not None:
                put(lib.olreg_options_set_timeouts(
                    opts,
                    0 if connect_timeout is None else _ms(connect_timeout, "connect_timeout"),
                    0 if stall_timeout is None else _ms(stall_timeout, "stall_timeout"),
                ))
            if retries is not None:
                policy = retries if isinstance(retries, Retries) else Retries(int(retries))
                put(lib.olreg_options_set_retries(
                    opts,
                    _uint(policy.attempts, 32, "retries"),
                    _ms(policy.base_delay, "base_delay"),
                    _ms(policy.max_delay, "max_delay"),
                ))
            if proxy is not None:
                put(lib.olreg_options_set_proxy(opts, _text(proxy, "proxy")))
            if ca_pem is not None:
                pem = ca_pem.encode() if isinstance(ca_pem, str) else bytes(ca_pem)
                put(lib.olreg_options_add_ca_pem(opts, pem, len(pem)))
            if ca_file is not None:
                put(lib.olreg_options_add_ca_file(opts, _path(ca_file, "ca_file")))
            if insecure:
                put(lib.olreg_options_set_insecure(opts, True))
            for host, user, password in credentials:
                put(lib.olreg_options_add_credential(
                    opts, _text(host, "credential host"), _text(user, "credential user"),
                    _text(password, "credential password")))
            if docker_config is not _UNSET:
                put(lib.olreg_options_set_docker_config(
                    opts, None if docker_config is None else _path(docker_config, "docker_config")))
            for spec in mirrors:
                put(lib.olreg_options_add_mirror(opts, _text(spec, "mirror")))
            if limits is not None:
                max_manifest, max_blob, max_layers = limits
                put(lib.olreg_options_set_limits(
                    opts, _uint(max_manifest, 64, "max_manifest_bytes"),
                    _uint(max_blob, 64, "max_blob_size"), _uint(max_layers, 32, "max_layers")))
            if log is not None:
                # Kept on the client for its whole life: olreg calls it until
                # olreg_client_free().
                self._log = _LogBridge(log)
                put(lib.olreg_options_set_log_callback(
                    opts, self._log.c_callback, None, int(LogLevel(log_level))))

            client = _ClientPtr()
            err = _ErrorPtr()
            status = lib.olreg_client_new(opts, ctypes.byref(client), ctypes.byref(err))
        finally:
            lib.olreg_options_free(opts)
        log_error = self._log.take() if self._log else None
        if status != Status.OK:
            error = _take_error(lib, status, err)
            if log_error is not None:
                raise log_error from error
            raise error
        self._ptr = client
        if log_error is not None:
            self.close()
            raise log_error

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        """Frees the client. Calls running on other threads are waited for
        first; new calls raise ValueError. Idempotent."""
        me = threading.get_ident()
        with self._cond:
            if self._running.get(me):
                raise RuntimeError("Client.close() called from inside one of its own calls")
            self._closed = True
            while self._running:
                self._cond.wait()
            ptr, self._ptr = self._ptr, None
        if ptr:
            self._lib.olreg_client_free(ptr)
        # Only now may the log trampoline go: olreg no longer calls it.
        self._log = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # No call can be running: each holds a reference to the client.
        ptr = getattr(self, "_ptr", None)
        if ptr:
            self._ptr = None
            try:
                self._lib.olreg_client_free(ptr)
            except Exception:
                pass

    # -- call plumbing ----------------------------------------------------

    def _enter(self) -> Any:
        with self._cond:
            if self._closed or not self._ptr:
                raise ValueError("the olreg client is closed")
            me = threading.get_ident()
            self._running[me] = self._running.get(me, 0) + 1
            return self._ptr

    def _leave(self) -> None:
        with self._cond:
            me = threading.get_ident()
            left = self._running[me] - 1
            if left:
                self._running[me] = left
            else:
                del self._running[me]
            self._cond.notify_all()

    def _run(
        self,
        call: Callable[[Any, Any, Any, Any], int],
        take: Callable[[], _T],
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelToken] = None,
    ) -> _T:
        """Runs one blocking C call and turns its outcome into a result.

        ``call(client_ptr, callback, cancel_ptr, err_ref)`` makes the C call
        and returns its status. ``take()`` copies and frees the
        out-parameters; it runs on success, and also when the call succeeded
        but a callback raised (so nothing leaks).
        """
        lib = self._lib
        log_bridge = self._log  # close() may drop self._log once we have left
        bridge = _ProgressBridge(progress)  # referenced until the end of this frame
        if cancel is not None and not isinstance(cancel, CancelToken):
            raise TypeError(f"cancel must be a CancelToken, not {type(cancel).__name__}")
        cancel_ptr = cancel._acquire() if cancel is not None else None
        try:
            client = self._enter()
            try:
                err = _ErrorPtr()
                status = call(client, bridge.c_callback, cancel_ptr, ctypes.byref(err))
            finally:
                self._leave()
        finally:
            if cancel is not None:
                cancel._release()
        log_error = log_bridge.take() if log_bridge is not None else None
        result: Optional[_T] = None
        error: Optional[OlregError] = None
        if status == Status.OK:
            if err:
                lib.olreg_error_free(err)
            result = take()
        else:
            error = _take_error(lib, status, err)
        if bridge.exception is not None:
            # The callback's own exception, with its traceback; olreg's
            # "cancelled" is only its consequence.
            raise bridge.exception
        if log_error is not None:
            if error is not None:
                raise log_error from error
            raise log_error
        if error is not None:
            raise error
        return result  # type: ignore[return-value]  # set: status was OK

    # -- operations -------------------------------------------------------

    def pull(
        self,
        name: str,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelToken] = None,
    ) -> Manifest:
        """Downloads ``name``'s manifest and the blobs the store lacks, then
        links the manifest. Blocks until done.

        ``progress(Progress)`` runs on this thread; returning False cancels.
        Raises :class:`OlregError` subclasses (NotFound, Cancelled, …) or
        whatever ``progress`` raised.
        """
        c_name = _text(name, "name", Status.INVALID_NAME)
        out = _ManifestPtr()
        lib = self._lib
        return self._run(
            lambda client, cb, token, err: lib.olreg_pull(
                client, c_name, cb, None, token, ctypes.byref(out), err),
            lambda: Manifest._take(lib, out),
            progress,
            cancel,
        )

    def push(
        self,
        name: str,
        from_: Optional[str] = None,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelToken] = None,
    ) -> None:
        """Uploads the local model ``from_`` (default: ``name`` itself) as
        ``name``. Checks every blob locally first, uploads what the registry
        lacks, then puts the manifest's exact bytes."""
        c_name = _text(name, "name", Status.INVALID_NAME)
        c_from = None if from_ is None else _text(from_, "from_", Status.INVALID_NAME)
        lib = self._lib
        self._run(
            lambda client, cb, token, err: lib.olreg_push(
                client, c_name, c_from, cb, None, token, err),
            lambda: None,
            progress,
            cancel,
        )

    def resolve(self, name: str, cancel: Optional[CancelToken] = None) -> Manifest:
        """Fetches ``name``'s manifest from its registry without storing anything."""
        c_name = _text(name, "name", Status.INVALID_NAME)
        out = _ManifestPtr()
        lib = self._lib
        return self._run(
            lambda client, _cb, token, err: lib.olreg_resolve(
                client, c_name, token, ctypes.byref(out), err),
            lambda: Manifest._take(lib, out),
            None,
            cancel,
        )

    def list(self) -> list[str]:
        """The local models, ``host/namespace/model:tag`` each, sorted."""
        out = _StringListPtr()
        lib = self._lib
        return self._run(
            lambda client, _cb, _token, err: lib.olreg_list(client, ctypes.byref(out), err),
            lambda: _take_strings(lib, out),
        )

    def show(self, name: str) -> bytes:
        """The local manifest of ``name``, byte for byte as stored."""
        c_name = _text(name, "name", Status.INVALID_NAME)
        buf = _CharPtr()
        length = ctypes.c_size_t(0)
        lib = self._lib

        def take() -> bytes:
            try:
                return ctypes.string_at(buf, length.value) if buf else b""
            finally:
                lib.olreg_string_free(buf)

        return self._run(
            lambda client, _cb, _token, err: lib.olreg_show(
                client, c_name, ctypes.byref(buf), ctypes.byref(length), err),
            take,
        )

    def remove(self, name: str) -> None:
        """Removes ``name`` from the store (its blobs stay until :meth:`prune`)."""
        c_name = _text(name, "name", Status.INVALID_NAME)
        lib = self._lib
        self._run(lambda client, _cb, _token, err: lib.olreg_remove(client, c_name, err),
                  lambda: None)

    def prune(self) -> tuple[int, int]:
        """Deletes unreferenced blobs and abandoned partial downloads.

        Returns ``(blobs_removed, bytes_freed)``.
        """
        removed = ctypes.c_uint64(0)
        freed = ctypes.c_uint64(0)
        lib = self._lib
        return self._run(
            lambda client, _cb, _token, err: lib.olreg_prune(
                client, ctypes.byref(removed), ctypes.byref(freed), err),
            lambda: (int(removed.value), int(freed.value)),
        )

    def verify(
        self,
        name: Optional[str] = None,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelToken] = None,
    ) -> builtins.list[str]:
        """Re-hashes every blob of the store, or of ``name`` (config included).

        Returns one line per bad blob (``sha256:<hex>: corrupt: …``,
        ``… missing``, ``… wrong size: …``); empty when all is well.
        """
        c_name = None if name is None else _text(name, "name", Status.INVALID_NAME)
        out = _StringListPtr()
        lib = self._lib
        return self._run(
            lambda client, cb, token, err: lib.olreg_verify(
                client, c_name, cb, None, token, ctypes.byref(out), err),
            lambda: _take_strings(lib, out),
            progress,
            cancel,
        )


def _uint(value: int, bits: int, what: str) -> int:
    """Checks that ``value`` fits a C unsigned integer of ``bits`` bits."""
    value = int(value)
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{what} must be between 0 and {(1 << bits) - 1}, not {value}")
    return value
