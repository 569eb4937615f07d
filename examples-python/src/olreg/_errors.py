"""Exceptions: one class per ``olreg_status``, and turning a failed call's
status and ``olreg_error *`` into one of them."""

from __future__ import annotations

import ctypes
from typing import Any, ClassVar, Optional, Union

from ._abi import Status


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

    #: The class of each status, by its name (``"NOT_FOUND"``).
    by_status_name: ClassVar[dict[str, type[OlregError]]] = {}

    def __init_subclass__(cls, status: Optional[Status] = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            assert status.name not in OlregError.by_status_name, status
            OlregError.by_status_name[status.name] = cls

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


# One class per status, registered under the status's name: an error from
# the library finds its class by the name the library gives its status
# (olreg_status_name), so no status number is written down twice.
# olreg_status_str() (see status_str()) has each status's description, and
# olreg.h documents when each is returned.


class NullArgument(OlregError, status=Status.NULL_ARGUMENT):
    """OLREG_NULL_ARGUMENT (a bug in these bindings)."""


class InvalidArgument(OlregError, ValueError, status=Status.INVALID_ARGUMENT):
    """OLREG_INVALID_ARGUMENT; for a bad :class:`Client` option the message
    names it (``option chunk_size: …``)."""


class InvalidName(OlregError, ValueError, status=Status.INVALID_NAME):
    """OLREG_INVALID_NAME."""


class InvalidDigest(OlregError, ValueError, status=Status.INVALID_DIGEST):
    """OLREG_INVALID_DIGEST."""


class NotFound(OlregError, status=Status.NOT_FOUND):
    """OLREG_NOT_FOUND."""


class Unauthorized(OlregError, status=Status.UNAUTHORIZED):
    """OLREG_UNAUTHORIZED."""


class InvalidManifest(OlregError, status=Status.INVALID_MANIFEST):
    """OLREG_INVALID_MANIFEST."""


class HTTPError(OlregError, status=Status.HTTP):
    """OLREG_HTTP (see ``http_status``)."""


class NetworkError(OlregError, status=Status.NETWORK):
    """OLREG_NETWORK."""


class ProtocolError(OlregError, status=Status.PROTOCOL):
    """OLREG_PROTOCOL."""


class DigestMismatch(OlregError, status=Status.DIGEST_MISMATCH):
    """OLREG_DIGEST_MISMATCH."""


class SizeMismatch(OlregError, status=Status.SIZE_MISMATCH):
    """OLREG_SIZE_MISMATCH."""


class FileSystemError(OlregError, status=Status.IO):
    """OLREG_IO (the message names the path)."""


class NoSpace(OlregError, status=Status.NO_SPACE):
    """OLREG_NO_SPACE."""


class Cancelled(OlregError, status=Status.CANCELLED):
    """OLREG_CANCELLED: by a :class:`CancelToken`, a progress callback, or
    :meth:`Client.close` while the call ran."""


class Reentrant(OlregError, status=Status.REENTRANT):
    """OLREG_REENTRANT: a blocking olreg call was made from inside a callback."""


class InternalError(OlregError, status=Status.INTERNAL):
    """OLREG_INTERNAL: a bug inside olreg (a lost background task, an
    operation that ended without a result); the base of :class:`Panic`.
    Please report it."""


class Panic(InternalError, status=Status.PANIC):
    """OLREG_PANIC: a bug inside olreg, a panic caught before it reached
    the caller. Please report it."""


class LibraryNotFound(OSError):
    """The olreg shared library could not be found, loaded or is incompatible."""


def _name_of(lib: ctypes.CDLL, status: int) -> Optional[str]:
    """The library's name of a status without its ``OLREG_`` prefix
    (``"NOT_FOUND"``: the name of its :class:`Status` and its class's key),
    or None for a number the library does not know."""
    raw = lib.olreg_status_name(status)
    if raw is None:
        return None
    name: str = raw.decode("ascii", "replace")
    return name[len("OLREG_"):] if name.startswith("OLREG_") else name


def make_error(
    status: Status, message: str, http_status: int = 0, registry_code: Optional[str] = None
) -> OlregError:
    """The exception for ``status``: the class registered under its name."""
    cls = OlregError.by_status_name.get(status.name, OlregError)
    return cls(status, message, http_status, registry_code)


def decode(raw: Optional[bytes]) -> Optional[str]:
    """A C string from olreg as text (registry text may be any bytes)."""
    return None if raw is None else raw.decode("utf-8", "replace")


def take_error(lib: ctypes.CDLL, status: int, err: Any) -> OlregError:
    """Builds an OlregError from a status and an ``olreg_error*`` (freed
    here). The class is the one of the status's name as the library gives
    it; a status these bindings do not know raises OlregError itself, with
    the number as its ``status``."""
    text = decode(lib.olreg_status_str(status)) or ""
    message, http_status, code = text, 0, None
    if err:
        try:
            message = decode(lib.olreg_error_message(err)) or text
            http_status = int(lib.olreg_error_http_status(err))
            code = decode(lib.olreg_error_registry_code(err))
        finally:
            lib.olreg_error_free(err)
    name = _name_of(lib, status)
    known: Union[Status, int] = status
    if name is not None and name in Status.__members__:
        known = Status[name]
    cls = OlregError.by_status_name.get(name or "", OlregError)
    return cls(known, message, http_status, code)


def check(lib: ctypes.CDLL, status: int, err: Any = None) -> None:
    """Raises for a non-OK status; always frees ``err``."""
    if status != Status.OK:
        raise take_error(lib, status, err)
    if err:  # not expected on success, but never leak it
        lib.olreg_error_free(err)
