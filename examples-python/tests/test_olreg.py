"""Tests of the olreg Python bindings against olreg's test registry.

Run with ``make test-python`` at the repository root (see conftest.py).

Nothing is skipped: a missing library or test registry fails the tests with a
message saying how to build them.
"""

from __future__ import annotations

import gc
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

import olreg

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


# --------------------------------------------------------------------------
# The test registry
# --------------------------------------------------------------------------


def _testreg_path() -> Path:
    """The test registry program, or a test failure that says how to build it."""
    path = Path(os.environ.get("OLREG_TESTREG") or REPO / "target" / "release" / "olreg-testreg")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"the test registry program {path} is missing: run `make lib` at the repository "
            "root (or set OLREG_TESTREG to its path)",
            pytrace=False,
        )
    return path


class Registry:
    """One ``olreg-testreg serve`` process and its control API."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(_testreg_path()), "serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            self.stop()
            pytest.fail("olreg-testreg serve printed nothing within 60 s", pytrace=False)
        if not line:
            code = self.proc.wait(timeout=10)
            pytest.fail(f"olreg-testreg serve exited ({code}) without its JSON line",
                        pytrace=False)
        self.info: dict[str, Any] = json.loads(line)
        self.url: str = self.info["url"]
        self.host: str = self.info["host"]
        self.models: dict[str, dict[str, Any]] = {m["name"]: m for m in self.info["models"]}

    def stop(self) -> None:
        """Closes stdin (the server exits on EOF) and waits for it."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def name(self, model: str) -> str:
        """``ns/model:tag`` as a full olreg name on this registry."""
        return f"{self.url}/{model}"

    def stored_name(self, model: str) -> str:
        """``ns/model:tag`` as olreg lists it (``host/ns/model:tag``)."""
        return f"{self.host}/{model}"

    # -- control API ------------------------------------------------------

    def _control(self, method: str, path: str, body: Optional[Any] = None) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/_testreg/{path}", data=data, method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            answer: bytes = resp.read()
            return answer

    def add_fault(self, fault: dict[str, Any]) -> None:
        self._control("POST", "faults", fault)

    def clear_faults(self) -> None:
        self._control("DELETE", "faults")

    def add_model(self, name: str, layer_sizes: list[int], seed: int = 1) -> dict[str, Any]:
        model: dict[str, Any] = json.loads(self._control(
            "POST", "models", {"name": name, "layer_sizes": layer_sizes, "seed": seed}))
        self.models[name] = model
        return model

    def manifest(self, repo: str, reference: str) -> bytes:
        return self._control("GET", f"manifests/{repo}/{reference}")

    def put_manifest(self, repo: str, reference: str, body: bytes) -> None:
        """Serves ``body`` (raw bytes) as repo:reference."""
        req = urllib.request.Request(
            f"{self.url}/_testreg/manifests/{repo}/{reference}", data=body, method="PUT")
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()

    def requests(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = json.loads(self._control("GET", "requests"))
        return records


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

TINY = "library/tiny:latest"


@pytest.fixture(scope="session", autouse=True)
def library() -> str:
    """Loads the shared library once, or fails every test with the reason."""
    try:
        return olreg.library_path()
    except olreg.LibraryNotFound as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = Registry("--model", f"{TINY}=1K,64K")
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def registry2() -> Iterator[Registry]:
    reg = Registry()
    try:
        yield reg
    finally:
        reg.stop()


def make_client(store: Path, **kwargs: Any) -> olreg.Client:
    """A hermetic client: no key, no Docker credentials, no mirrors from the env."""
    kwargs.setdefault("no_key", True)
    kwargs.setdefault("docker_config", None)
    return olreg.Client(models_dir=store, **kwargs)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[olreg.Client]:
    with make_client(tmp_path / "models") as c:
        yield c


def blob_sizes(model: dict[str, Any]) -> int:
    """Bytes of every blob of a testreg model, config included."""
    return int(model["config"]["size"]) + sum(int(layer["size"]) for layer in model["layers"])


def blob_path(store: Path, digest: str) -> Path:
    return store / "blobs" / digest.replace(":", "-")


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_version_and_library(library: str) -> None:
    assert olreg.version().startswith("0.1.")
    assert os.path.basename(library).startswith("libolreg.so")
    assert olreg.status_str(olreg.Status.NOT_FOUND)
    assert olreg.status_str(9999) == "unknown status"


def test_missing_library_fails_clearly(tmp_path: Path) -> None:
    env = dict(os.environ, OLREG_LIB=str(tmp_path / "nope.so"))
    code = (
        "import olreg\n"
        "try:\n"
        "    olreg.version()\n"
        "except olreg.LibraryNotFound as e:\n"
        "    print('LNF', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("LNF") and "nope.so" in out.stdout


def test_pull_with_progress(client: olreg.Client, registry: Registry) -> None:
    model = registry.models[TINY]
    events: list[olreg.Progress] = []
    threads: set[int] = set()

    def progress(p: olreg.Progress) -> None:
        threads.add(threading.get_ident())
        events.append(p)

    manifest = client.pull(registry.name(TINY), progress=progress)

    assert manifest.digest == model["digest"]
    assert manifest.bytes == model["manifest"].encode()
    assert manifest.bytes == registry.manifest("library/tiny", "latest")
    assert manifest.layers == [(l["digest"], l["media_type"], l["size"]) for l in model["layers"]]
    assert manifest.total_size == blob_sizes(model)
    assert manifest.config == (model["config"]["digest"], model["config"]["media_type"],
                               model["config"]["size"])
    assert manifest.json()["config"]["digest"] == model["config"]["digest"]

    assert threads == {threading.get_ident()}, "callbacks must run on the calling thread"
    first, last = events[0], events[-1]
    assert first.event is olreg.Event.RESOLVED
    assert first.total == blob_sizes(model)
    assert first.layers_total == len(model["layers"]) + 1  # the config is a blob too
    assert first.digest is None
    assert last.event is olreg.Event.FINISHED
    assert last.completed == last.total == blob_sizes(model)
    assert last.layers_done == last.layers_total
    kinds = {e.event for e in events}
    assert olreg.Event.DONE in kinds
    done = {e.digest for e in events if e.event is olreg.Event.DONE}
    assert done == {model["config"]["digest"], *(l["digest"] for l in model["layers"])}
    assert all(e.completed <= e.total for e in events)
    assert all(isinstance(e.media_type, str) for e in events)

    # A second pull transfers nothing: every blob is cached.
    again: list[olreg.Progress] = []
    client.pull(registry.name(TINY), progress=again.append)
    assert not any(e.event is olreg.Event.BYTES for e in again)
    assert again[-1].event is olreg.Event.FINISHED


def test_pull_with_name_mask(tmp_path: Path, registry: Registry) -> None:
    with make_client(tmp_path / "m", name_mask=f"{registry.url}/library/_:latest") as c:
        assert c.pull("tiny").digest == registry.models[TINY]["digest"]
        assert c.list() == [registry.stored_name(TINY)]


def test_resolve_stores_nothing(client: olreg.Client, registry: Registry) -> None:
    manifest = client.resolve(registry.name(TINY))
    assert manifest.digest == registry.models[TINY]["digest"]
    assert manifest.bytes == registry.manifest("library/tiny", "latest")
    assert client.list() == []


def test_list_show_remove_prune(tmp_path: Path, registry: Registry) -> None:
    store = tmp_path / "models"
    model = registry.models[TINY]
    with make_client(store) as client:
        assert client.list() == []
        assert client.prune() == (0, 0)
        client.pull(registry.name(TINY))

        assert client.list() == [registry.stored_name(TINY)]
        shown = client.show(registry.name(TINY))
        assert isinstance(shown, bytes)
        assert shown == registry.manifest("library/tiny", "latest")
        assert client.prune() == (0, 0)  # everything is referenced

        client.remove(registry.name(TINY))
        assert client.list() == []
        with pytest.raises(olreg.NotFound):
            client.show(registry.name(TINY))
        with pytest.raises(olreg.NotFound):
            client.remove(registry.name(TINY))

        removed, freed = client.prune()
        assert removed == len(model["layers"]) + 1
        assert freed == blob_sizes(model)
        assert not any((store / "blobs").iterdir())


def test_verify_reports_a_corrupt_blob(tmp_path: Path, registry: Registry) -> None:
    store = tmp_path / "models"
    model = registry.models[TINY]
    with make_client(store) as client:
        client.pull(registry.name(TINY))
        assert client.verify() == []
        events: list[olreg.Progress] = []
        assert client.verify(registry.name(TINY), progress=events.append) == []
        assert events, "verify reports progress"

        bad = model["layers"][1]["digest"]
        path = blob_path(store, bad)
        path.chmod(0o644)
        data = bytearray(path.read_bytes())
        data[100] ^= 0xFF
        path.write_bytes(bytes(data))

        problems = client.verify(registry.name(TINY))
        assert len(problems) == 1
        assert problems[0].startswith(bad) and "corrupt" in problems[0]
        assert client.verify() == problems

        path.unlink()
        problems = client.verify(registry.name(TINY))
        assert len(problems) == 1 and bad in problems[0] and "missing" in problems[0]

        with pytest.raises(olreg.NotFound):
            client.verify(registry.name("library/absent:latest"))


def test_push_to_a_second_registry(
    client: olreg.Client, registry: Registry, registry2: Registry
) -> None:
    pulled = client.pull(registry.name(TINY))
    target = registry2.name("ns/copy:v1")
    events: list[olreg.Progress] = []
    client.push(target, from_=registry.name(TINY), progress=events.append)

    assert events[0].event is olreg.Event.RESOLVED
    assert events[-1].event is olreg.Event.FINISHED
    assert registry2.manifest("ns/copy", "v1") == pulled.bytes
    assert client.resolve(target).digest == pulled.digest
    puts = [r for r in registry2.requests() if r["method"] == "PUT"]
    assert any("/manifests/v1" in r["path_and_query"] for r in puts)

    # Pushing a model the store lacks fails before any request.
    with pytest.raises(olreg.NotFound):
        client.push(registry2.name("ns/other:v1"))


def test_not_found_carries_http_status_and_code(client: olreg.Client, registry: Registry) -> None:
    with pytest.raises(olreg.NotFound) as info:
        client.pull(registry.name("library/absent:latest"))
    e = info.value
    assert isinstance(e, olreg.OlregError)
    assert e.status is olreg.Status.NOT_FOUND
    assert e.http_status == 404
    assert e.registry_code == "MANIFEST_UNKNOWN"
    assert "absent" in e.message
    assert "MANIFEST_UNKNOWN" in str(e)
    assert client.list() == []


@pytest.mark.parametrize("name", ["bad name", "../../etc/passwd:x", "a\0b", "ns/../m", ""])
def test_invalid_name(client: olreg.Client, registry: Registry, name: str) -> None:
    with pytest.raises(olreg.InvalidName) as info:
        client.pull(name)
    assert info.value.status is olreg.Status.INVALID_NAME
    assert isinstance(info.value, ValueError)
    with pytest.raises(olreg.InvalidName):
        client.show(name)
    assert registry.requests() == []


def test_cancel_token_from_another_thread(client: olreg.Client, registry: Registry) -> None:
    model = registry.add_model("library/big:latest", [4 << 20], seed=2)
    big = model["layers"][0]["digest"]
    registry.add_fault({
        "target": {"blob_store": {"digest": big}},
        "kind": {"stall": {"after_bytes": 65536, "millis": 10000}},
        "times": 0,
    })
    token = olreg.CancelToken()
    cancelled_at: list[float] = []

    def cancel_soon() -> None:
        time.sleep(0.5)
        cancelled_at.append(time.monotonic())
        token.cancel()

    canceller = threading.Thread(target=cancel_soon)
    start = time.monotonic()
    canceller.start()
    with pytest.raises(olreg.Cancelled) as info:
        client.pull(registry.name("library/big:latest"), cancel=token)
    returned = time.monotonic()
    canceller.join()
    assert info.value.status is olreg.Status.CANCELLED
    assert returned - cancelled_at[0] < 1.0, "a cancelled pull returns within a second"
    assert returned - start < 5
    assert token.cancelled
    assert client.list() == []

    # A token stays cancelled: later calls with it return at once.
    with pytest.raises(olreg.Cancelled):
        client.pull(registry.name(TINY), cancel=token)
    token.close()
    with pytest.raises(ValueError):
        token.cancel()

    # The client is still fine, and resumes once the fault is gone.
    registry.clear_faults()
    with olreg.CancelToken() as fresh:
        assert client.pull(registry.name("library/big:latest"), cancel=fresh).digest == \
            model["digest"]


def test_cancel_by_returning_false(client: olreg.Client, registry: Registry) -> None:
    seen: list[olreg.Progress] = []

    def progress(p: olreg.Progress) -> bool:
        seen.append(p)
        return False

    with pytest.raises(olreg.Cancelled):
        client.pull(registry.name(TINY), progress=progress)
    assert seen[0].event is olreg.Event.RESOLVED
    assert seen[-1].event is not olreg.Event.FINISHED
    assert client.list() == []

    # True and None both continue.
    client.pull(registry.name(TINY), progress=lambda p: True)
    assert client.list() == [registry.stored_name(TINY)]


class Boom(Exception):
    pass


def test_exception_in_progress_propagates(client: olreg.Client, registry: Registry) -> None:
    raised = Boom("from the callback")
    calls = 0

    def progress(p: olreg.Progress) -> None:
        nonlocal calls
        calls += 1
        raise raised

    with pytest.raises(Boom) as info:
        client.pull(registry.name(TINY), progress=progress)
    assert info.value is raised
    assert calls == 1, "the callback is not called again once it raised"
    assert client.list() == []
    # The traceback reaches into the callback.
    assert any(frame.name == "progress" for frame in info.traceback)


def test_exception_in_the_last_progress_event_is_not_lost(
    client: olreg.Client, registry: Registry
) -> None:
    def progress(p: olreg.Progress) -> None:
        if p.event is olreg.Event.FINISHED:
            raise Boom("at the end")

    with pytest.raises(Boom):
        client.pull(registry.name(TINY), progress=progress)
    # The pull itself had completed by then.
    assert client.list() == [registry.stored_name(TINY)]


def test_callback_calling_the_client_gets_reentrant(client: olreg.Client,
                                                    registry: Registry) -> None:
    def progress(p: olreg.Progress) -> None:
        client.list()

    with pytest.raises(olreg.Reentrant):
        client.pull(registry.name(TINY), progress=progress)

    # close() cannot wait for the call it is called from: the library
    # cancels the calls, closes the client and answers Reentrant.
    def closer(p: olreg.Progress) -> None:
        client.close()

    with pytest.raises(olreg.Reentrant):
        client.pull(registry.name(TINY), progress=closer)
    assert client.closed
    with pytest.raises(ValueError, match="closed"):
        client.list()
    client.close()  # from outside a callback it completes the close


def test_log_callback(tmp_path: Path, registry: Registry) -> None:
    lines: list[tuple[olreg.LogLevel, str, int]] = []

    def log(level: olreg.LogLevel, message: str) -> None:
        lines.append((level, message, threading.get_ident()))

    with make_client(tmp_path / "m", log=log, log_level=olreg.LogLevel.DEBUG) as client:
        assert lines, "the client logs its settings when created"
        assert lines[0][0] is olreg.LogLevel.INFO
        assert str(tmp_path / "m") in lines[0][1]
        lines.clear()

        def pull_in_thread() -> None:
            client.pull(registry.name(TINY))

        worker = threading.Thread(target=pull_in_thread)
        worker.start()
        worker.join()
        assert worker.ident is not None
        assert any(level is olreg.LogLevel.DEBUG and registry.host in message
                   for level, message, _ in lines)
        assert {ident for _, _, ident in lines} == {worker.ident}, \
            "log lines arrive on the thread of the call"

    # Above the threshold only: INFO hides the per-request DEBUG lines.
    lines.clear()
    with make_client(tmp_path / "m2", log=log, log_level=olreg.LogLevel.INFO) as client:
        client.pull(registry.name(TINY))
    assert lines and all(level <= olreg.LogLevel.INFO for level, _, _ in lines)


def test_exception_in_log_callback_is_raised_after_the_call(tmp_path: Path,
                                                             registry: Registry) -> None:
    armed = False

    def log(level: olreg.LogLevel, message: str) -> None:
        if armed:
            raise Boom(message)

    with make_client(tmp_path / "m", log=log, log_level=olreg.LogLevel.DEBUG) as client:
        armed = True
        with pytest.raises(Boom):
            client.pull(registry.name(TINY))
        # Logging cannot cancel: the pull itself completed.
        armed = False
        assert client.list() == [registry.stored_name(TINY)]


def test_concurrent_pulls_on_one_client(tmp_path: Path, registry: Registry) -> None:
    names = [f"conc/m{i}:latest" for i in range(4)]
    models = [registry.add_model(n, [2048, 4096], seed=10 + i) for i, n in enumerate(names)]
    # Every blob-store answer waits a second: run one after another, the pulls
    # would take at least 4 s; with the GIL released they overlap.
    registry.add_fault({
        "target": {"blob_store": {"digest": None}},
        "kind": {"stall_headers": {"millis": 1000}},
        "times": 0,
    })
    results: dict[str, olreg.Manifest] = {}
    errors: list[BaseException] = []
    callback_threads: dict[str, set[int]] = {n: set() for n in names}
    ticks = 0

    with make_client(tmp_path / "m", streams=4) as client:
        def pull(name: str) -> None:
            def progress(p: olreg.Progress) -> None:
                callback_threads[name].add(threading.get_ident())
            try:
                results[name] = client.pull(registry.name(name), progress=progress)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=pull, args=(n,)) for n in names]
        start = time.monotonic()
        for t in threads:
            t.start()
        # This thread keeps running Python while the pulls block in C.
        while any(t.is_alive() for t in threads):
            ticks += 1
            time.sleep(0.01)
        elapsed = time.monotonic() - start
        for t in threads:
            t.join()

        assert not errors, errors
        assert elapsed < 3.5, f"pulls did not overlap ({elapsed:.1f} s)"
        assert ticks > 50
        for name, model, t in zip(names, models, threads):
            assert results[name].digest == model["digest"]
            assert callback_threads[name] == {t.ident}
        assert sorted(client.list()) == sorted(registry.stored_name(n) for n in names)


def test_context_manager_closes(tmp_path: Path, registry: Registry) -> None:
    with make_client(tmp_path / "m") as client:
        client.pull(registry.name(TINY))
        assert not client.closed
    assert client.closed
    with pytest.raises(ValueError, match="closed"):
        client.list()
    client.close()  # idempotent

    # A new client on the same store sees the model.
    with make_client(tmp_path / "m") as again:
        assert again.list() == [registry.stored_name(TINY)]


def test_close_cancels_a_running_call(tmp_path: Path, registry: Registry) -> None:
    # Every blob answer stalls for a minute: the pull cannot end by itself
    # while the test runs.
    registry.add_fault({
        "target": {"blob_store": {"digest": None}},
        "kind": {"stall_headers": {"millis": 60000}},
        "times": 0,
    })
    client = make_client(tmp_path / "m")
    started = threading.Event()
    close_returned = threading.Event()
    late_events: list[olreg.Progress] = []
    outcome: list[Any] = []

    def progress(p: olreg.Progress) -> None:
        started.set()
        if close_returned.is_set():
            late_events.append(p)

    def pull() -> None:
        try:
            outcome.append(client.pull(registry.name(TINY), progress=progress))
        except BaseException as e:  # noqa: BLE001 - checked below
            outcome.append(e)

    worker = threading.Thread(target=pull)
    worker.start()
    assert started.wait(30), "the pull never reported progress"
    before = time.monotonic()
    client.close()  # cancels the stalled pull and waits for it to return
    waited = time.monotonic() - before
    close_returned.set()
    worker.join(30)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], olreg.Cancelled), outcome
    assert outcome[0].status is olreg.Status.CANCELLED
    assert waited < 20, f"close() took {waited:.1f} s: it waited for the stall"
    assert late_events == [], "a callback ran after close() returned"
    assert client.closed
    with pytest.raises(ValueError, match="closed"):
        client.list()
    client.close()  # idempotent
    assert client.closed


def test_dropping_a_client_while_another_thread_uses_it(tmp_path: Path,
                                                         registry: Registry) -> None:
    # The last reference goes while a pull runs: the call keeps the client
    # alive, and it is freed (olreg_client_free) once the call has returned.
    registry.add_fault({
        "target": {"blob_store": {"digest": None}},
        "kind": {"stall_headers": {"millis": 500}},
        "times": 1,
    })
    client: Optional[olreg.Client] = make_client(tmp_path / "m")
    assert client is not None
    gone = weakref.ref(client)
    started = threading.Event()
    outcome: list[Any] = []

    def pull(c: olreg.Client) -> None:
        try:
            outcome.append(c.pull(registry.name(TINY), progress=lambda p: started.set()))
        except BaseException as e:  # noqa: BLE001 - checked below
            outcome.append(e)

    worker = threading.Thread(target=pull, args=(client,))
    worker.start()
    assert started.wait(30)
    client = None
    worker.join(30)
    del worker
    assert outcome and isinstance(outcome[0], olreg.Manifest), outcome
    gc.collect()
    assert gone() is None, "the client was not freed once its last call returned"
    with make_client(tmp_path / "m") as again:
        assert again.list() == [registry.stored_name(TINY)]


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(olreg.InvalidArgument, match="^option streams: "):
        make_client(tmp_path, streams=0)
    with pytest.raises(olreg.InvalidName, match="^option name_mask: "):
        make_client(tmp_path, name_mask="not a mask!")
    with pytest.raises(olreg.InvalidArgument):
        olreg.Client(models_dir=tmp_path, key_file=tmp_path / "no-such-key", docker_config=None)
    with pytest.raises(ValueError):
        make_client(tmp_path, key_file=tmp_path / "k")  # with no_key=True
    with pytest.raises(olreg.InvalidArgument, match="^option streams: "):
        make_client(tmp_path, streams=-1)  # refused by the binding: C cannot hold it
    with pytest.raises(olreg.InvalidArgument, match="^option signed_host: "):
        make_client(tmp_path, signed_hosts=["https://x.example/path"])


@pytest.mark.parametrize(("option", "value", "cls"), [
    ("chunk_size", (1 << 20) - 1, olreg.InvalidArgument),
    ("upload_chunk_size", 4096, olreg.InvalidArgument),
    ("models_dir", "", olreg.InvalidArgument),
    ("user_agent", "a\nb", olreg.InvalidArgument),
    ("mirrors", ["ftp://mirror.example"], olreg.InvalidArgument),
    ("ca_pem", "not a certificate", olreg.InvalidArgument),
])
def test_option_errors_come_from_the_library_naming_the_option(
    tmp_path: Path, option: str, value: Any, cls: type[olreg.OlregError]
) -> None:
    # The setters only store; olreg_client_new checks every option and its
    # error object names the one it refuses, which the exception carries.
    kwargs = {"models_dir": tmp_path / "m", "no_key": True, "docker_config": None,
              option: value}
    with pytest.raises(cls) as info:
        olreg.Client(**kwargs)
    name = {"mirrors": "mirror"}.get(option, option)
    assert info.value.message.startswith(f"option {name}: "), info.value.message
    assert info.value.message != olreg.status_str(info.value.status)
    assert not (tmp_path / "m").exists(), "a refused client created its store"


def test_platform_picks_the_index_entry(tmp_path: Path, registry2: Registry) -> None:
    entries = []
    for arch in ("amd64", "arm64"):
        model = registry2.add_model(f"ns/m:{arch}", [1000])
        entries.append({
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": model["digest"],
            "size": len(registry2.manifest("ns/m", arch)),
            "platform": {"os": "linux", "architecture": arch},
        })
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": entries}
    registry2.put_manifest("ns/m", "v1", json.dumps(index).encode())
    with make_client(tmp_path / "a", platform="linux/arm64") as client:
        manifest = client.pull(registry2.name("ns/m:v1"))
        assert manifest.digest == registry2.models["ns/m:arm64"]["digest"]
        assert client.show(registry2.name("ns/m:v1")) == registry2.manifest("ns/m", "arm64")
    with make_client(tmp_path / "b", platform="windows/amd64") as client:
        with pytest.raises(olreg.NotFound, match="linux/amd64, linux/arm64"):
            client.pull(registry2.name("ns/m:v1"))
    with pytest.raises(olreg.InvalidArgument, match="os/arch"):
        make_client(tmp_path / "c", platform="linux")


def test_options_are_accepted(tmp_path: Path, registry: Registry) -> None:
    big = (4 << 20) + 5
    chunky = registry.add_model("library/chunky:latest", [1024, big], seed=3)
    big_digest = chunky["layers"][1]["digest"]
    with make_client(
        tmp_path / "m",
        streams=3,
        chunk_threshold=1024,
        chunk_size=1 << 20,
        user_agent="ollama/0.0.0 (amd64 linux) olreg-python-test",
        connect_timeout=5,
        stall_timeout=5,
        retries=olreg.Retries(attempts=2, base_delay=0.01, max_delay=0.1),
        credentials=[("example.com", "u", "p")],
        upload_chunk_size=1 << 20,
        limits=(0, 0, 0),
        signed_hosts=["example.com:5000"],
        min_speed=512,
    ) as client:
        # 4 MiB + 5 bytes over a 1 KiB threshold: fetched in ranges of at
        # most 1 MiB that together cover the blob (after a 1-byte probe).
        client.pull(registry.name("library/chunky:latest"))
        ranges = sorted(
            tuple(int(x) for x in v.removeprefix("bytes=").split("-"))
            for r in registry.requests()
            if r["server"] == "blob_store" and big_digest in r["path_and_query"]
            for k, v in r["headers"] if k == "range"
        )
        chunks = [r for r in ranges if r != (0, 0)]
        assert len(chunks) >= 5, ranges
        assert all(end - start + 1 <= 1 << 20 for start, end in chunks), ranges
        assert [start for start, _ in chunks[1:]] == [end + 1 for _, end in chunks[:-1]], ranges
        assert chunks[0][0] <= 1 and chunks[-1][1] == big - 1, ranges
        agents = {v for r in registry.requests() for k, v in r["headers"] if k == "user-agent"}
        assert agents == {"ollama/0.0.0 (amd64 linux) olreg-python-test"}


class _Recorder:
    """The real library, recording the arguments of chosen setters."""

    def __init__(self, lib: Any, *names: str) -> None:
        self._lib = lib
        self.calls: dict[str, list[tuple[Any, ...]]] = {name: [] for name in names}

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._lib, name)
        if name not in self.calls:
            return fn

        def record(*args: Any) -> Any:
            self.calls[name].append(args[1:])  # without the options pointer
            return fn(*args)
        return record


def test_defaults_are_the_librarys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   registry: Registry) -> None:
    # What is left out reaches the library as 0 ("keep the default"): the
    # binding does not restate chunk sizes, attempts or delays.
    recorder = _Recorder(olreg._loader.library(), "olreg_options_set_chunking",
                         "olreg_options_set_retries", "olreg_options_set_timeouts")
    monkeypatch.setattr(olreg._client, "library", lambda: recorder)
    with make_client(tmp_path / "m", chunk_threshold=1024, retries=3,
                     stall_timeout=5) as client:
        client.pull(registry.name(TINY))
    with make_client(tmp_path / "m2", chunk_size=1 << 20,
                     retries=olreg.Retries(max_delay=0.5)):
        pass
    assert recorder.calls == {
        "olreg_options_set_chunking": [(1024, 0), (0, 1 << 20)],
        "olreg_options_set_retries": [(3, 0, 0), (0, 0, 500)],
        "olreg_options_set_timeouts": [(0, 5000)],
    }


def test_keyboard_interrupt_in_a_callback_cancels(client: olreg.Client,
                                                   registry: Registry) -> None:
    # What Ctrl-C does when it lands while a progress callback runs.
    def progress(p: olreg.Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.pull(registry.name(TINY), progress=progress)
    assert client.list() == []


def test_push_progress_and_cancel(client: olreg.Client, registry: Registry,
                                  registry2: Registry) -> None:
    client.pull(registry.name(TINY))
    target = registry2.name("ns/copy:v1")
    with pytest.raises(olreg.Cancelled):
        client.push(target, from_=registry.name(TINY), progress=lambda p: False)
    with pytest.raises(urllib.error.HTTPError) as missing:
        registry2.manifest("ns/copy", "v1")
    assert missing.value.code == 404

    with olreg.CancelToken() as token:
        token.cancel()
        with pytest.raises(olreg.Cancelled):
            client.push(target, from_=registry.name(TINY), cancel=token)

    # Pushing again after a complete push uploads no blob.
    client.push(target, from_=registry.name(TINY))
    events: list[olreg.Progress] = []
    client.push(target, from_=registry.name(TINY), progress=events.append)
    cached = [e for e in events if e.event is olreg.Event.CACHED]
    assert len(cached) == len(registry.models[TINY]["layers"]) + 1


def test_verify_cancel(client: olreg.Client, registry: Registry) -> None:
    client.pull(registry.name(TINY))
    with pytest.raises(olreg.Cancelled):
        client.verify(progress=lambda p: False)


def test_argument_types_are_checked(client: olreg.Client, registry: Registry) -> None:
    with pytest.raises(TypeError):
        client.pull(registry.name(TINY), progress="not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.pull(registry.name(TINY), cancel=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.pull(b"bytes/are:not-names")  # type: ignore[arg-type]
    assert registry.requests() == []


def test_copy_export_import(tmp_path: Path, registry: Registry, registry2: Registry) -> None:
    with make_client(tmp_path / "models") as c:
        events: list[olreg.Progress] = []
        copied = c.copy(registry.name(TINY), registry2.name("ns/copy:v1"), progress=events.append)
        assert events[0].event is olreg.Event.RESOLVED
        assert events[-1].event is olreg.Event.FINISHED
        assert registry2.manifest("ns/copy", "v1") == copied.bytes
        assert not (tmp_path / "models" / "blobs").exists(), "a copy never touches the store"

        pulled = c.pull(registry.name(TINY))
        for dest in (tmp_path / "layout", tmp_path / "layout.tar"):
            c.export(registry.name(TINY), dest)
            with make_client(tmp_path / f"other-{dest.name}") as other:
                imported = other.import_(dest, "local/tiny:v1", ref="latest")
                assert imported.digest == pulled.digest
                assert other.show("local/tiny:v1") == pulled.bytes
                with pytest.raises(olreg.NotFound):
                    other.import_(dest, "local/x:v1", ref="nope")

        # A damaged layout raises with the blob's digest and imports nothing.
        layer = pulled.layers[-1].digest
        path = tmp_path / "layout" / "blobs" / "sha256" / layer.split(":")[1]
        data = bytearray(path.read_bytes())
        data[0] ^= 0xFF
        path.write_bytes(bytes(data))
        with make_client(tmp_path / "victim") as victim:
            with pytest.raises(olreg.DigestMismatch) as caught:
                victim.import_(tmp_path / "layout", "local/bad:v1")
            assert layer[:19] in str(caught.value)
            assert victim.list() == []


def test_rate_limit_caps_the_client(tmp_path: Path) -> None:
    reg = Registry("--model", "library/capped:latest=1M,1M")
    try:
        model = reg.models["library/capped:latest"]
        with make_client(tmp_path / "models", rate_limit=1 << 20) as c:
            started = time.monotonic()
            c.pull(reg.name("library/capped:latest"))
            took = time.monotonic() - started
        # 2 MiB and a little at 1 MiB/s, less the eighth of a second saved.
        least = (blob_sizes(model) - (1 << 17)) / (1 << 20)
        assert took >= least, f"{blob_sizes(model)} bytes in {took:.2f} s"
    finally:
        reg.stop()
    with pytest.raises(ValueError):
        make_client(tmp_path / "other", rate_limit=-1)
