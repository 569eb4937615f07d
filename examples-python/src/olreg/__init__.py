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

The shared library is loaded on first use (``import olreg`` never fails for
want of it), from the first of: ``$OLREG_LIB`` (a file path),
``$OLREG_LIB_DIR/libolreg.so``, ``build/lib`` of the source checkout this
package runs from, the ``libdir`` of ``pkg-config olreg`` (where ``make
install`` put it), the dynamic loader (``libolreg.so.<ABI>``), then
``ctypes.util.find_library("olreg")``. Its ABI version must be the one these
bindings were written for (:data:`ABI_VERSION`), or :class:`LibraryNotFound`
says which version was found.

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

from ._abi import ABI_VERSION, Event, LogLevel, Status
from ._client import CancelToken, Client, Layer, Manifest, Progress, Retries
from ._errors import (
    Cancelled,
    DigestMismatch,
    FileSystemError,
    HTTPError,
    InternalError,
    InvalidArgument,
    InvalidDigest,
    InvalidManifest,
    InvalidName,
    LibraryNotFound,
    NetworkError,
    NoSpace,
    NotFound,
    NullArgument,
    OlregError,
    Panic,
    ProtocolError,
    Reentrant,
    SizeMismatch,
    Unauthorized,
)
from ._loader import library_path, status_name, status_str, version

#: This package's version: the olreg release it belongs to (``OLREG_VERSION``).
__version__ = "0.1.0"

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
    "Panic",
    "Progress",
    "ProtocolError",
    "Reentrant",
    "Retries",
    "SizeMismatch",
    "Status",
    "Unauthorized",
    "library_path",
    "status_name",
    "status_str",
    "version",
]

# Public names are documented, shown and pickled as olreg.<name>.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = __name__
del _name, _obj
