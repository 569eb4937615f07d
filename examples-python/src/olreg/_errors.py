"""Exceptions: one class per ``olreg_status``, and turning a failed call's
status and ``olreg_error *`` into one of them."""

from __future__ import annotations

import ctypes
from typing import Any, Optional, Union

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


# One class per status; olreg_status_str() (see status_str()) has each
# status's description, and olreg.h documents when each is returned.


class NullArgument(OlregError):
    """OLREG_NULL_ARGUMENT (a bug in these bindings)."""


class InvalidArgument(OlregError, ValueError):
    """OLREG_INVALID_ARGUMENT."""


class InvalidName(OlregError, ValueError):
    """OLREG_INVALID_NAME."""


class InvalidDigest(OlregError, ValueError):
    """OLREG_INVALID_DIGEST."""


class NotFound(OlregError):
    """OLREG_NOT_FOUND."""


class Unauthorized(OlregError):
    """OLREG_UNAUTHORIZED."""


class InvalidManifest(OlregError):
    """OLREG_INVALID_MANIFEST."""


class HTTPError(OlregError):
    """OLREG_HTTP (see ``http_status``)."""


class NetworkError(OlregError):
    """OLREG_NETWORK."""


class ProtocolError(OlregError):
    """OLREG_PROTOCOL."""


class DigestMismatch(OlregError):
    """OLREG_DIGEST_MISMATCH."""


class SizeMismatch(OlregError):
    """OLREG_SIZE_MISMATCH."""


class FileSystemError(OlregError):
    """OLREG_IO (the message names the path)."""


class NoSpace(OlregError):
    """OLREG_NO_SPACE."""


class Cancelled(OlregError):
    """OLREG_CANCELLED: by a :class:`CancelToken` or a progress callback."""


class Reentrant(OlregError):
    """OLREG_REENTRANT: a blocking olreg call was made from inside a callback."""


class InternalError(OlregError):
    """OLREG_PANIC: a bug inside olreg. Please report it."""


class LibraryNotFound(OSError):
    """The olreg shared library could not be found, loaded or is incompatible."""


ERROR_CLASSES: dict[int, type[OlregError]] = {
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


def make_error(
    status: int, message: str, http_status: int = 0, registry_code: Optional[str] = None
) -> OlregError:
    """The exception for ``status`` (OlregError itself for an unknown one)."""
    cls = ERROR_CLASSES.get(status, OlregError)
    return cls(status, message, http_status, registry_code)


def decode(raw: Optional[bytes]) -> Optional[str]:
    """A C string from olreg as text (registry text may be any bytes)."""
    return None if raw is None else raw.decode("utf-8", "replace")


def take_error(lib: ctypes.CDLL, status: int, err: Any) -> OlregError:
    """Builds an OlregError from a status and an ``olreg_error*`` (freed here)."""
    if not err:
        return make_error(status, lib.olreg_status_str(status).decode())
    try:
        message = decode(lib.olreg_error_message(err)) or lib.olreg_status_str(status).decode()
        http_status = int(lib.olreg_error_http_status(err))
        code = decode(lib.olreg_error_registry_code(err))
    finally:
        lib.olreg_error_free(err)
    return make_error(status, message, http_status, code)


def check(lib: ctypes.CDLL, status: int, err: Any = None) -> None:
    """Raises for a non-OK status; always frees ``err``."""
    if status != Status.OK:
        raise take_error(lib, status, err)
    if err:  # not expected on success, but never leak it
        lib.olreg_error_free(err)
