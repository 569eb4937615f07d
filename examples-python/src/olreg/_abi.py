"""The C ABI of ``olreg.h`` as ctypes declarations: constants, types and the
prototype of every function.

This module mirrors the header and nothing else. ``tests/test_header.py``
parses ``include/olreg.h`` and fails on any difference (a function missing
here, an argument or return type that drifted, a constant or struct field
that changed), so a change to the C ABI cannot go unnoticed by the binding.
"""

from __future__ import annotations

import ctypes
import enum
from typing import Any

#: The (major, minor) of the header these declarations mirror
#: (``OLREG_VERSION_MAJOR``, ``OLREG_VERSION_MINOR``).
ABI_VERSION: tuple[int, int] = (0, 1)


def soname(abi: tuple[int, int] = ABI_VERSION) -> str:
    """The SONAME of a library with this ABI (the rule of ``build.rs``: while
    the major version is 0 the minor version is the ABI generation)."""
    major, minor = abi
    return f"libolreg.so.0.{minor}" if major == 0 else f"libolreg.so.{major}"


# --------------------------------------------------------------------------
# Constants (the OLREG_* values; their numbers never change)
# --------------------------------------------------------------------------


class Status(enum.IntEnum):
    """``olreg_status`` values (``OLREG_<name>``).

    The one list of statuses in these bindings, kept only so that code can
    name them (``Status.NOT_FOUND``). Their names and texts come from the
    library (:func:`olreg.status_name`, :func:`olreg.status_str`), and
    ``tests/test_header.py`` checks this list against ``olreg.h`` and against
    the library's ``olreg_status_name``.
    """

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
    INTERNAL = 18


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
# Types
# --------------------------------------------------------------------------


class olreg_cancel(ctypes.Structure):
    """Opaque ``struct olreg_cancel``."""


class olreg_client(ctypes.Structure):
    """Opaque ``struct olreg_client``."""


class olreg_error(ctypes.Structure):
    """Opaque ``struct olreg_error``."""


class olreg_manifest(ctypes.Structure):
    """Opaque ``struct olreg_manifest``."""


class olreg_options(ctypes.Structure):
    """Opaque ``struct olreg_options``."""


class olreg_string_list(ctypes.Structure):
    """Opaque ``struct olreg_string_list``."""


CancelPtr = ctypes.POINTER(olreg_cancel)
ClientPtr = ctypes.POINTER(olreg_client)
ErrorPtr = ctypes.POINTER(olreg_error)
ManifestPtr = ctypes.POINTER(olreg_manifest)
OptionsPtr = ctypes.POINTER(olreg_options)
StringListPtr = ctypes.POINTER(olreg_string_list)
#: A ``char *`` that is owned (freed with olreg_string_free) or
#: length-delimited: ``c_char_p`` would copy it up to a NUL and lose the pointer.
CharPtr = ctypes.POINTER(ctypes.c_char)

status_t = ctypes.c_int32
event_t = ctypes.c_int32
log_level_t = ctypes.c_int32


class olreg_progress(ctypes.Structure):
    """``struct olreg_progress`` (borrowed by the callback for its duration)."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("event", event_t),
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


#: ``olreg_progress_cb``
PROGRESS_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(olreg_progress))
#: ``olreg_log_cb``
LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, log_level_t, ctypes.c_char_p)


# --------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------


def _out(t: Any) -> Any:
    """``T *`` for an out-parameter."""
    return ctypes.POINTER(t)


_E = _out(ErrorPtr)  # olreg_error **err
_str = ctypes.c_char_p  # a borrowed NUL-terminated string, either way
_size = ctypes.c_size_t
_u16, _u32, _u64 = ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64
_void = ctypes.c_void_p

#: Every function of olreg.h: ``name: (restype, argtypes)``.
PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "olreg_cancel_new": (status_t, [_out(CancelPtr)]),
    "olreg_cancel_cancel": (status_t, [CancelPtr]),
    "olreg_cancel_is_cancelled": (ctypes.c_bool, [CancelPtr]),
    "olreg_cancel_free": (None, [CancelPtr]),
    "olreg_client_new": (status_t, [OptionsPtr, _out(ClientPtr), _E]),
    "olreg_client_close": (status_t, [ClientPtr]),
    "olreg_client_free": (None, [ClientPtr]),
    "olreg_pull": (
        status_t,
        [ClientPtr, _str, PROGRESS_CB, _void, CancelPtr, _out(ManifestPtr), _E],
    ),
    "olreg_push": (status_t, [ClientPtr, _str, _str, PROGRESS_CB, _void, CancelPtr, _E]),
    "olreg_resolve": (status_t, [ClientPtr, _str, CancelPtr, _out(ManifestPtr), _E]),
    "olreg_list": (status_t, [ClientPtr, _out(StringListPtr), _E]),
    "olreg_show": (status_t, [ClientPtr, _str, _out(CharPtr), _out(_size), _E]),
    "olreg_remove": (status_t, [ClientPtr, _str, _E]),
    "olreg_prune": (status_t, [ClientPtr, _out(_u64), _out(_u64), _E]),
    "olreg_verify": (
        status_t,
        [ClientPtr, _str, PROGRESS_CB, _void, CancelPtr, _out(StringListPtr), _E],
    ),
    "olreg_copy": (
        status_t,
        [ClientPtr, _str, _str, PROGRESS_CB, _void, CancelPtr, _out(ManifestPtr), _E],
    ),
    "olreg_export": (status_t, [ClientPtr, _str, _str, PROGRESS_CB, _void, CancelPtr, _E]),
    "olreg_import": (
        status_t,
        [ClientPtr, _str, _str, _str, PROGRESS_CB, _void, CancelPtr, _out(ManifestPtr), _E],
    ),
    "olreg_error_status": (status_t, [ErrorPtr]),
    "olreg_error_message": (_str, [ErrorPtr]),
    "olreg_error_http_status": (_u16, [ErrorPtr]),
    "olreg_error_registry_code": (_str, [ErrorPtr]),
    "olreg_error_free": (None, [ErrorPtr]),
    "olreg_manifest_digest": (_str, [ManifestPtr]),
    "olreg_manifest_bytes": (CharPtr, [ManifestPtr, _out(_size)]),
    "olreg_manifest_layer_count": (_size, [ManifestPtr]),
    "olreg_manifest_layer_digest": (_str, [ManifestPtr, _size]),
    "olreg_manifest_layer_media_type": (_str, [ManifestPtr, _size]),
    "olreg_manifest_layer_size": (_u64, [ManifestPtr, _size]),
    "olreg_manifest_config_digest": (_str, [ManifestPtr]),
    "olreg_manifest_config_media_type": (_str, [ManifestPtr]),
    "olreg_manifest_config_size": (_u64, [ManifestPtr]),
    "olreg_manifest_total_size": (_u64, [ManifestPtr]),
    "olreg_manifest_free": (None, [ManifestPtr]),
    "olreg_options_new": (status_t, [_out(OptionsPtr)]),
    "olreg_options_free": (None, [OptionsPtr]),
    "olreg_options_set_models_dir": (status_t, [OptionsPtr, _str]),
    "olreg_options_set_name_mask": (status_t, [OptionsPtr, _str]),
    "olreg_options_set_key_file": (status_t, [OptionsPtr, _str]),
    "olreg_options_set_streams": (status_t, [OptionsPtr, _u32]),
    "olreg_options_set_chunking": (status_t, [OptionsPtr, _u64, _u64]),
    "olreg_options_set_upload_chunk_size": (status_t, [OptionsPtr, _u64]),
    "olreg_options_set_rate_limit": (status_t, [OptionsPtr, _u64]),
    "olreg_options_set_user_agent": (status_t, [OptionsPtr, _str]),
    "olreg_options_set_timeouts": (status_t, [OptionsPtr, _u32, _u32]),
    "olreg_options_set_retries": (status_t, [OptionsPtr, _u32, _u32, _u32]),
    "olreg_options_set_proxy": (status_t, [OptionsPtr, _str]),
    "olreg_options_add_ca_file": (status_t, [OptionsPtr, _str]),
    # The PEM is passed with its length (it need not be NUL-terminated).
    "olreg_options_add_ca_pem": (status_t, [OptionsPtr, _str, _size]),
    "olreg_options_set_insecure": (status_t, [OptionsPtr, ctypes.c_bool]),
    "olreg_options_add_credential": (status_t, [OptionsPtr, _str, _str, _str]),
    "olreg_options_set_docker_config": (status_t, [OptionsPtr, _str]),
    "olreg_options_add_mirror": (status_t, [OptionsPtr, _str]),
    "olreg_options_set_platform": (status_t, [OptionsPtr, _str]),
    "olreg_options_add_signed_host": (status_t, [OptionsPtr, _str]),
    "olreg_options_set_min_speed": (status_t, [OptionsPtr, _u64]),
    "olreg_options_set_limits": (status_t, [OptionsPtr, _u64, _u64, _u32]),
    "olreg_options_set_log_callback": (status_t, [OptionsPtr, LOG_CB, _void, log_level_t]),
    "olreg_status_str": (_str, [status_t]),
    "olreg_status_name": (_str, [status_t]),
    "olreg_version": (_str, []),
    "olreg_string_free": (None, [CharPtr]),
    "olreg_string_list_len": (_size, [StringListPtr]),
    "olreg_string_list_get": (_str, [StringListPtr, _size]),
    "olreg_string_list_free": (None, [StringListPtr]),
}
