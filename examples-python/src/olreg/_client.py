"""The client, cancel tokens and the values they return."""

from __future__ import annotations

import builtins
import ctypes
import dataclasses
import os
import threading
from typing import Any, Callable, Iterable, NamedTuple, Optional, TypeVar, Union

from . import _abi as c
from ._abi import Event, LogLevel, Status
from ._errors import OlregError, check, decode, make_error, take_error
from ._loader import library

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _text(value: str, what: str, status: Status = Status.INVALID_ARGUMENT) -> bytes:
    """A str as a NUL-free UTF-8 C string (a NUL would silently cut it short)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise make_error(status, f"{what} contains a NUL character: {value!r}")
    return value.encode("utf-8")


def _path(value: PathLike, what: str) -> bytes:
    """A path-like as a NUL-free C string (file-system encoding)."""
    raw = os.fsencode(value)
    if b"\0" in raw:
        raise make_error(Status.INVALID_ARGUMENT, f"{what} contains a NUL character")
    return raw


def _take_strings(lib: ctypes.CDLL, lst: Any) -> list[str]:
    """Copies an ``olreg_string_list*`` into a list and frees it."""
    try:
        n = lib.olreg_string_list_len(lst)
        out: list[str] = []
        for i in range(n):
            item = lib.olreg_string_list_get(lst, i)
            out.append(decode(item) or "")
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
    def _from_c(cls, p: c.olreg_progress) -> "Progress":
        """Copies the fields the library filled in (``struct_size`` bounds them)."""
        size = p.struct_size

        def get(name: str, default: Any) -> Any:
            field = getattr(c.olreg_progress, name)
            return getattr(p, name) if field.offset + field.size <= size else default

        raw_event = get("event", 0)
        try:
            event: Union[Event, int] = Event(raw_event)
        except ValueError:
            event = raw_event  # an event kind newer than these bindings
        return cls(
            event=event,
            digest=decode(get("digest", None)),
            media_type=decode(get("media_type", None)) or "",
            message=decode(get("message", None)),
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
    included), the total size of every distinct blob (config included) and
    the config blob (None when the manifest names none)."""

    digest: str
    bytes: bytes
    layers: list[Layer]
    total_size: int
    config: Optional[Layer] = None

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
                    digest=decode(lib.olreg_manifest_layer_digest(m, i)) or "",
                    media_type=decode(lib.olreg_manifest_layer_media_type(m, i)) or "",
                    size=int(lib.olreg_manifest_layer_size(m, i)),
                )
                for i in range(lib.olreg_manifest_layer_count(m))
            ]
            config_digest = decode(lib.olreg_manifest_config_digest(m))
            config = None if config_digest is None else Layer(
                digest=config_digest,
                media_type=decode(lib.olreg_manifest_config_media_type(m)) or "",
                size=int(lib.olreg_manifest_config_size(m)),
            )
            return cls(
                digest=decode(lib.olreg_manifest_digest(m)) or "",
                bytes=data,
                layers=layers,
                total_size=int(lib.olreg_manifest_total_size(m)),
                config=config,
            )
        finally:
            lib.olreg_manifest_free(m)


@dataclasses.dataclass(frozen=True)
class Retries:
    """Retry policy: attempts in all (the first included; 1 = no retries),
    and the first and longest backoff in seconds. None keeps the library's
    default for that part (see ``olreg_options_set_retries`` in olreg.h)."""

    attempts: Optional[int] = None
    base_delay: Optional[float] = None
    max_delay: Optional[float] = None


def _ms(seconds: Optional[float], what: str) -> int:
    """Seconds as a uint32 of milliseconds; None is 0, the library's default.
    A value C cannot hold raises InvalidArgument naming the option, as the
    library does for the values it refuses."""
    if seconds is None:
        return 0
    if seconds < 0:
        raise make_error(Status.INVALID_ARGUMENT, f"option {what}: must not be negative")
    ms = int(round(seconds * 1000))
    if seconds > 0 and ms == 0:
        ms = 1  # 0 would mean "the default"
    if ms > 0xFFFFFFFF:
        raise make_error(Status.INVALID_ARGUMENT, f"option {what}: {seconds} s is too long")
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
        lib = library()
        self._lib = lib
        self._lock = threading.Lock()
        self._uses = 0
        ptr = c.CancelPtr()
        check(lib, lib.olreg_cancel_new(ctypes.byref(ptr)))
        self._ptr: Any = ptr

    def cancel(self) -> None:
        """Cancels every call using this token. Safe from any thread."""
        with self._lock:
            if not self._ptr:
                raise ValueError("the cancel token is closed")
            check(self._lib, self._lib.olreg_cancel_cancel(self._ptr))

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
            ptr, self._ptr = self._ptr, c.CancelPtr()
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
        self.c_callback = c.PROGRESS_CB(self._trampoline)

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
        self.c_callback = c.LOG_CB(self._trampoline)

    def _trampoline(self, _user_data: Optional[int], level: int, message: Optional[bytes]) -> None:
        try:
            try:
                lvl: Union[LogLevel, int] = LogLevel(level)
            except ValueError:
                lvl = level
            self.callback(lvl, decode(message) or "")  # type: ignore[arg-type]
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

    Every argument is optional; None keeps the library's default (listed at
    ``olreg_options_new`` and each setter in olreg.h, and in the README's
    configuration table): this binding passes 0 for it and never restates
    the defaults. The library checks every value when the client is
    created and names the option it refuses.

    Args:
        models_dir: the store root.
        name_mask: completes names, e.g. ``http://127.0.0.1:5000/library/_:latest``.
        key_file: an OpenSSH Ed25519 key to sign requests with.
        no_key: make every request anonymous, even if the default key exists.
        streams: parallel requests per call (at least 1).
        chunk_threshold, chunk_size: blobs over the threshold download in
            ranged chunks of chunk_size bytes (at least 1 MiB).
        user_agent: the User-Agent header.
        connect_timeout, stall_timeout: seconds.
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
        upload_chunk_size: PATCH piece size for upload sessions (at least 1 MiB).
        limits: ``(max_manifest_bytes, max_blob_size, max_layers)``; 0 keeps a default.
        platform: ``os/arch[/variant]`` (e.g. ``linux/arm64``): the entry of an
            image index or manifest list a pull follows; None: this machine's.
        signed_hosts: ``host[:port]`` registries that get Ollama's signed
            token without asking, as registry.ollama.ai and ollama.com do.
        min_speed: the least a response body must deliver, bytes per second
            over the stall timeout; 0 turns the rule off.
        rate_limit: the most bytes per second the whole client moves, shared
            by every stream of every call (default: ``$OLREG_LIMIT_RATE``,
            e.g. ``50M``, else no cap; 0: no cap).

    Raises:
        OlregError: a bad option (InvalidArgument, InvalidName for the mask;
            the message names it: ``option chunk_size: …``), an unreadable
            key, or an I/O error.
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
        platform: Optional[str] = None,
        signed_hosts: Iterable[str] = (),
        min_speed: Optional[int] = None,
        rate_limit: Optional[int] = None,
    ) -> None:
        # Set first so that close()/__del__ work whatever happens below.
        self._ptr: Any = None
        self._closed = False
        self._log: Optional[_LogBridge] = None

        if key_file is not None and no_key:
            raise ValueError("key_file and no_key=True exclude each other")
        lib = library()
        self._lib = lib
        opts = c.OptionsPtr()
        check(lib, lib.olreg_options_new(ctypes.byref(opts)))
        try:
            def put(status: int) -> None:
                check(lib, status)

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
                    opts, _uint(chunk_threshold, 64, "chunk_threshold"),
                    _uint(chunk_size, 64, "chunk_size")))
            if rate_limit is not None:
                put(lib.olreg_options_set_rate_limit(
                    opts, _uint(rate_limit, 64, "rate_limit")))
            if upload_chunk_size is not None:
                put(lib.olreg_options_set_upload_chunk_size(
                    opts, _uint(upload_chunk_size, 64, "upload_chunk_size")))
            if user_agent is not None:
                put(lib.olreg_options_set_user_agent(opts, _text(user_agent, "user_agent")))
            if connect_timeout is not None or stall_timeout is not None:
                put(lib.olreg_options_set_timeouts(
                    opts, _ms(connect_timeout, "connect_timeout"),
                    _ms(stall_timeout, "stall_timeout")))
            if retries is not None:
                policy = retries if isinstance(retries, Retries) else Retries(retries)
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
            if platform is not None:
                put(lib.olreg_options_set_platform(opts, _text(platform, "platform")))
            for host in signed_hosts:
                put(lib.olreg_options_add_signed_host(opts, _text(host, "signed_host")))
            if min_speed is not None:
                put(lib.olreg_options_set_min_speed(opts, _uint(min_speed, 64, "min_speed")))
            if limits is not None:
                max_manifest, max_blob, max_layers = limits
                put(lib.olreg_options_set_limits(
                    opts, _uint(max_manifest, 64, "max_manifest_bytes"),
                    _uint(max_blob, 64, "max_blob_size"), _uint(max_layers, 32, "max_layers")))
            if log is not None:
                # Kept on the client for its whole life: olreg may call it
                # until olreg_client_free() (in __del__) has returned.
                self._log = _LogBridge(log)
                put(lib.olreg_options_set_log_callback(
                    opts, self._log.c_callback, None, int(LogLevel(log_level))))

            client = c.ClientPtr()
            err = c.ErrorPtr()
            status = lib.olreg_client_new(opts, ctypes.byref(client), ctypes.byref(err))
        finally:
            lib.olreg_options_free(opts)
        log_error = self._log.take() if self._log else None
        if status != Status.OK:
            error = take_error(lib, status, err)
            if log_error is not None:
                raise log_error from error
            raise error
        self._ptr = client
        if log_error is not None:
            self.close()
            raise log_error

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        """Closes the client (``olreg_client_close``): calls still running on
        it in other threads are cancelled (they raise :class:`Cancelled`),
        close waits for them to return, then stops olreg's worker threads.
        Later calls raise ValueError. Closing again does nothing.

        From inside a callback of one of the client's own calls it cannot
        wait (that call is running on this thread): the calls are cancelled,
        the client is closed, and close raises :class:`Reentrant`.

        The memory is freed when the client is garbage collected (then no
        call can be using it: each holds a reference to the client).
        """
        self._closed = True
        if self._ptr:
            check(self._lib, self._lib.olreg_client_close(self._ptr))

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # No call can be running: each holds a reference to the client. The
        # library closes the client first if close() was not called.
        ptr = getattr(self, "_ptr", None)
        if ptr:
            self._ptr = None
            try:
                self._lib.olreg_client_free(ptr)
            except Exception:
                pass

    # -- call plumbing ----------------------------------------------------

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
        bridge = _ProgressBridge(progress)  # referenced until the end of this frame
        if cancel is not None and not isinstance(cancel, CancelToken):
            raise TypeError(f"cancel must be a CancelToken, not {type(cancel).__name__}")
        # A close() racing with this check is the library's to settle: a call
        # on a closed client returns OLREG_CANCELLED at once.
        if self._closed:
            raise ValueError("the olreg client is closed")
        cancel_ptr = cancel._acquire() if cancel is not None else None
        try:
            err = c.ErrorPtr()
            status = call(self._ptr, bridge.c_callback, cancel_ptr, ctypes.byref(err))
        finally:
            if cancel is not None:
                cancel._release()
        log_error = self._log.take() if self._log is not None else None
        result: Optional[_T] = None
        error: Optional[OlregError] = None
        if status == Status.OK:
            if err:
                lib.olreg_error_free(err)
            result = take()
        else:
            error = take_error(lib, status, err)
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
        out = c.ManifestPtr()
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
        out = c.ManifestPtr()
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
        out = c.StringListPtr()
        lib = self._lib
        return self._run(
            lambda client, _cb, _token, err: lib.olreg_list(client, ctypes.byref(out), err),
            lambda: _take_strings(lib, out),
        )

    def show(self, name: str) -> bytes:
        """The local manifest of ``name``, byte for byte as stored."""
        c_name = _text(name, "name", Status.INVALID_NAME)
        buf = c.CharPtr()
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
        out = c.StringListPtr()
        lib = self._lib
        return self._run(
            lambda client, cb, token, err: lib.olreg_verify(
                client, c_name, cb, None, token, ctypes.byref(out), err),
            lambda: _take_strings(lib, out),
            progress,
            cancel,
        )

    def copy(
        self,
        src: str,
        dst: str,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelToken] = None,
    ) -> Manifest:
        """Copies the model ``src`` from its registry to ``dst`` without
        touching the store: blobs stream through and are checked against
        their digests; blobs ``dst`` has are skipped (mounted on the same
        registry); the manifest's exact bytes are put last."""
        c_src = _text(src, "src", Status.INVALID_NAME)
        c_dst = _text(dst, "dst", Status.INVALID_NAME)
        out = c.ManifestPtr()
        lib = self._lib
        return self._run(
            lambda client, cb, token, err: lib.olreg_copy(
                client, c_src, c_dst, cb, None, token, ctypes.byref(out), err),
            lambda: Manifest._take(lib, out),
            progress,
            cancel,
        )

    def export(
        self,
        name: str,
        dest: PathLike,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelToken] = None,
    ) -> None:
        """Writes the local model ``name`` as an OCI image layout at ``dest``:
        a directory, or a tar archive when it ends in ``.tar`` (added to if
        it exists). The index entry is named by the tag."""
        c_name = _text(name, "name", Status.INVALID_NAME)
        c_dest = _path(dest, "dest")
        lib = self._lib
        self._run(
            lambda client, cb, token, err: lib.olreg_export(
                client, c_name, c_dest, cb, None, token, err),
            lambda: None,
            progress,
            cancel,
        )

    def import_(
        self,
        src: PathLike,
        name: str,
        ref: Optional[str] = None,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelToken] = None,
    ) -> Manifest:
        """Reads an image from the OCI image layout ``src`` (directory or
        ``.tar``) into the store as ``name``. ``ref`` picks the index entry
        (its tag or full name) when the layout holds several; without it
        such a layout raises :class:`InvalidArgument` listing them. A damaged
        layout raises (DigestMismatch, SizeMismatch, …) and changes nothing."""
        c_src = _path(src, "src")
        c_name = _text(name, "name", Status.INVALID_NAME)
        c_ref = None if ref is None else _text(ref, "ref")
        out = c.ManifestPtr()
        lib = self._lib
        return self._run(
            lambda client, cb, token, err: lib.olreg_import(
                client, c_src, c_name, c_ref, cb, None, token, ctypes.byref(out), err),
            lambda: Manifest._take(lib, out),
            progress,
            cancel,
        )


def _uint(value: Optional[int], bits: int, what: str) -> int:
    """Checks that ``value`` fits a C unsigned integer of ``bits`` bits;
    None is 0 (the library's default, for the settings where 0 means that).
    A value C cannot hold raises InvalidArgument naming the option."""
    if value is None:
        return 0
    value = int(value)
    if not 0 <= value < (1 << bits):
        raise make_error(Status.INVALID_ARGUMENT,
                         f"option {what}: must be between 0 and {(1 << bits) - 1}, not {value}")
    return value
