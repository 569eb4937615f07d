"""olreg beside the real Ollama (docs/ollama.md): a real `ollama serve` on a
free loopback port shares a store with the olreg program.

- Ollama lists, shows and runs a model olreg pulled from the test registry.
- olreg lists, shows and pushes (byte for byte) a model `ollama create` made.
- The prune race for real: while olreg pulls, Ollama restarts (pruning every
  unreferenced blob) and `ollama rm` deletes a blob the pull counted on; the
  pull completes, Ollama serves the model, and nothing olreg linked is lost.

The `ollama` binary is $OLREG_OLLAMA, else the one scripts/build-ollama.sh
keeps in the tools cache; without either, every test here skips, saying so.
The models are tiny llama GGUF files (ollama_model.py, PyPI `gguf`).
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from cli_helpers import blob_path
from conftest import REPO, SCRUBBED, Olreg, Registry

NO_OLLAMA = "no ollama binary: run scripts/build-ollama.sh (about 12 minutes) or set OLREG_OLLAMA"

# Generous: a 2-core machine shared with compiles starts Ollama's server in
# about a second and its model runner in a few.
START_TIMEOUT = 120
RUN_TIMEOUT = 300


def find_ollama():
    """$OLREG_OLLAMA (which must exist when set), else the build
    scripts/build-ollama.sh keeps in the tools cache, else None."""
    named = os.environ.get("OLREG_OLLAMA")
    if named:
        return Path(named)
    cached = subprocess.run([str(REPO / "scripts" / "build-ollama.sh"), "--cached"],
                            capture_output=True, stdin=subprocess.DEVNULL)
    return Path(cached.stdout.decode().strip()) if cached.returncode == 0 else None


OLLAMA = find_ollama()
pytestmark = pytest.mark.skipif(OLLAMA is None, reason=NO_OLLAMA)


@pytest.fixture(scope="module")
def tiny():
    """The tiny-model module (it needs PyPI gguf: `scripts/deps.sh ollama`)."""
    try:
        import ollama_model
    except ImportError as e:
        pytest.fail(f"{e}: run `scripts/deps.sh ollama`")
    return ollama_model


# What `ollama serve` logs once it has pruned and is about to serve.
LISTENING = re.compile(r"Listening on (127\.0\.0\.1:\d+) \(version ([^)]*)\)")


class Ollama:
    """`ollama serve` with OLLAMA_MODELS=store, started and stopped by the
    test (each start a new process on a port of its own choosing, logging to
    its own file), and the `ollama` client pointed at it."""

    def __init__(self, store, home, logs):
        if not OLLAMA.exists():
            pytest.fail(f"OLREG_OLLAMA names {OLLAMA}, which does not exist")
        self.store = Path(store)
        self.home = Path(home)
        self.logs = Path(logs)
        self.host = None
        self.proc = None
        self.starts = 0

    def env(self, prune=True, host=None):
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.startswith("OLLAMA_")}
        env.update(HOME=str(self.home), OLLAMA_HOST=host or self.host, OLLAMA_MODELS=str(self.store))
        if not prune:
            env["OLLAMA_NOPRUNE"] = "1"
        return env

    def start(self, prune):
        """Starts the server on a free loopback port; returns once it
        answers, that is after its start-up prune (Ollama prunes, then
        listens)."""
        assert self.proc is None
        self.starts += 1
        self.log = self.logs / f"ollama-serve-{self.starts}.log"
        with open(self.log, "wb") as log:
            # A session of its own: stop() ends the model runners it starts too.
            self.proc = subprocess.Popen([str(OLLAMA), "serve"], env=self.env(prune, host="127.0.0.1:0"),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"ollama serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            listening = LISTENING.search(self.log.read_text(errors="replace"))
            if listening:
                self.host, self.version = listening.groups()
                try:
                    with urllib.request.urlopen(f"http://{self.host}/api/version", timeout=5):
                        return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"ollama serve did not answer in {START_TIMEOUT} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # a runner left behind
        except ProcessLookupError:
            pass
        self.proc = None

    def restart(self, prune):
        self.stop()
        self.start(prune)

    def log_tail(self, lines=30):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __call__(self, *args, timeout=RUN_TIMEOUT):
        """Runs `ollama ARGS` against the server; fails the test unless it succeeds; returns stdout."""
        result = subprocess.run([str(OLLAMA), *args], env=self.env(), stdin=subprocess.DEVNULL,
                                capture_output=True, timeout=timeout)
        assert result.returncode == 0, (
            f"ollama {' '.join(args)}: exit {result.returncode}\n{result.stderr.decode(errors='replace')}\n"
            f"server log:\n{self.log_tail()}")
        return result.stdout.decode()

    def listed(self):
        """`ollama list`: {name: ID}."""
        rows = self("list").splitlines()[1:]
        return dict(row.split()[:2] for row in rows if row.strip())

    def run_words(self, name, tiny):
        """`ollama run NAME PROMPT`: the words the model wrote, all from its vocabulary."""
        words = self("run", name, "the cat").split()
        assert words, f"ollama run {name} printed nothing"
        assert set(words) <= set(tiny.VOCAB_WORDS), words
        return words


@pytest.fixture
def ollama(tmp_path):
    """A server (not yet started) on its own store, tmp_path/ollama-models."""
    ollama_home = tmp_path / "ollama-home"
    ollama_home.mkdir()
    server = Ollama(tmp_path / "ollama-models", ollama_home, tmp_path)
    yield server
    server.stop()


def ok(result):
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result


def publish(reg, tiny, repo_tag, gguf_bytes, parameters=None):
    """Serves an Ollama model of `gguf_bytes` as repo_tag; returns (manifest, blobs)."""
    body, blobs = tiny.manifest(gguf_bytes, parameters)
    for digest, data in blobs.items():
        assert reg.add_blob(data) == digest
    repo, tag = repo_tag.split(":")
    reg.put_manifest(repo, tag, body)
    return body, blobs


def gguf(tiny, tmp_path, seed):
    path = tiny.write_gguf(tmp_path / f"tiny-{seed}.gguf", seed)
    return path.read_bytes()


def model_id(manifest):
    """The ID `ollama list` shows: the start of the manifest file's SHA-256."""
    return hashlib.sha256(manifest).hexdigest()[:12]


def test_ollama_lists_shows_and_runs_what_olreg_pulled(tiny, ollama, home, tmp_path):
    reg = Registry()
    try:
        manifest, blobs = publish(reg, tiny, "library/tiny:latest", gguf(tiny, tmp_path, 1))
        olreg = Olreg(ollama.store, home)
        ok(olreg("pull", reg.name("library/tiny:latest")))
    finally:
        reg.stop()
    name = reg.listed("library/tiny:latest")

    ollama.start(prune=True)
    assert ollama.listed().get(name) == model_id(manifest), "Ollama sees the registry's manifest bytes"
    shown = " ".join(ollama("show", name).split())
    for part in ("architecture llama", "context length 256", "embedding length 64", "temperature 0"):
        assert part in shown, shown
    assert tiny.TEMPLATE in ollama("show", "--template", name)
    ollama.run_words(name, tiny)

    # Running it changed nothing olreg holds: same manifest, same blobs.
    assert ok(olreg("show", name)).stdout == manifest
    for digest, data in blobs.items():
        assert blob_path(ollama.store, digest).read_bytes() == data
    ok(olreg("verify"))


def test_olreg_lists_shows_and_pushes_what_ollama_created(tiny, ollama, home, tmp_path):
    gguf_path = tiny.write_gguf(tmp_path / "tiny.gguf", 1)
    gguf_bytes = gguf_path.read_bytes()
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(tiny.modelfile(gguf_path))
    ollama.start(prune=True)
    ollama("create", "local/made:v1", "-f", str(modelfile))

    olreg = Olreg(ollama.store, home)
    assert "registry.ollama.ai/local/made:v1" in ok(olreg("list")).stdout.decode().splitlines()
    stored = (ollama.store / "manifests" / "registry.ollama.ai" / "local" / "made" / "v1").read_bytes()
    assert ok(olreg("show", "local/made:v1")).stdout == stored
    manifest = json.loads(stored)
    layers = {layer["mediaType"]: layer["digest"] for layer in manifest["layers"]}
    assert layers[tiny.MEDIA_MODEL] == tiny.digest_of(gguf_bytes), "Ollama keeps the GGUF file as it is"
    ok(olreg("verify", "local/made:v1"))

    reg = Registry()
    try:
        ok(olreg("push", reg.name("team/made:v1"), "--from", "local/made:v1"))
        assert reg.manifest("team/made", "v1") == stored
        for blob in [manifest["config"], *manifest["layers"]]:
            sent = reg.control("GET", f"blobs/{blob['digest']}")
            assert sent == blob_path(ollama.store, blob["digest"]).read_bytes(), blob["mediaType"]

        # What was pushed comes back as a model Ollama runs.
        ok(olreg("pull", reg.name("team/made:v1")))
    finally:
        reg.stop()
    pulled = reg.listed("team/made:v1")
    assert ollama.listed()[pulled] == model_id(stored)
    ollama.run_words(pulled, tiny)


# The model blob of the pull raced against Ollama is held back this long (the
# registry pauses after its first bytes). The restart and the `ollama rm`
# took 0.12 s and 0.06 s with the 2-core machine's load at 9; the pause must
# stay below olreg's 30 s stall timeout.
HOLD_BACK_MS = 10_000


def staged(store, digest):
    return Path(store) / ".olreg" / "staged" / digest.replace(":", "-")


def test_ollama_pruning_during_an_olreg_pull(tiny, ollama, home, tmp_path):
    """Models: keep/one (linked before, must survive), gone/soon (removed
    with `ollama rm` during the pull; its parameters blob is one the pull
    needs and found present) and race/pulled (the pull)."""
    reg = Registry()
    try:
        olreg = Olreg(ollama.store, home)
        keep, keep_blobs = publish(reg, tiny, "keep/one:v1", gguf(tiny, tmp_path, 1))
        shared_params = {**tiny.PARAMETERS, "seed": 7}
        publish(reg, tiny, "gone/soon:v1", gguf(tiny, tmp_path, 3), shared_params)
        pulled, pulled_blobs = publish(reg, tiny, "race/pulled:v1", gguf(tiny, tmp_path, 2), shared_params)
        ok(olreg("pull", reg.name("keep/one:v1")))
        ok(olreg("pull", reg.name("gone/soon:v1")))
        layers = {layer["mediaType"]: layer["digest"] for layer in json.loads(pulled)["layers"]}
        model_blob, shared_blob = layers[tiny.MEDIA_MODEL], layers[tiny.MEDIA_PARAMS]
        config_blob = json.loads(pulled)["config"]["digest"]

        # A blob no manifest references: Ollama's start-up prune deletes it.
        junk = b"left over by an earlier pull"
        junk_path = blob_path(ollama.store, tiny.digest_of(junk))
        junk_path.write_bytes(junk)
        ollama.start(prune=False)
        assert junk_path.exists()

        reg.fault({"blob_store": {"digest": model_blob}},
                  {"stall": {"after_bytes": 10, "millis": HOLD_BACK_MS}}, times=1)
        reg.control("DELETE", "requests")
        log = tmp_path / "pull.log"
        with open(log, "wb") as stderr:
            pull = olreg.popen("-v", "pull", reg.name("race/pulled:v1"), stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            # The pull is under way once it reports its config done.
            config_done = f"pulling {config_blob[:len('sha256:') + 12]}: done"
            deadline = time.monotonic() + 60
            while config_done not in log.read_text():
                assert pull.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"no {config_done!r} in 60 s:\n{log.read_text()}"
                time.sleep(0.05)

            ollama.restart(prune=True)
            ollama("rm", reg.listed("gone/soon:v1"))
            # Ollama really pruned (the junk, and the blob only gone/soon
            # referenced), and not the pull's staged blob: seen while the pull ran.
            seen = {"junk": junk_path.exists(), "shared": blob_path(ollama.store, shared_blob).exists(),
                    "staged": staged(ollama.store, config_blob).exists()}
            assert pull.poll() is None, (
                f"the pull ended before Ollama pruned (the {HOLD_BACK_MS} ms hold-back was too short here)")
            assert pull.wait(timeout=RUN_TIMEOUT) == 0, log.read_text()
            assert seen == {"junk": False, "shared": False, "staged": True}, seen
        finally:
            if pull.poll() is None:
                pull.kill()
                pull.wait()
        fetched = [r["path_and_query"].rsplit("/", 1)[-1] for r in reg.requests()
                   if r["server"] == "registry" and r["method"] == "GET" and "/blobs/" in r["path_and_query"]]
    finally:
        reg.stop()

    # Ollama's prune cost no download: the blobs the pull had fetched were
    # fetched once; the one `ollama rm` took (present when the pull began)
    # was fetched again, with a warning saying so; the one keep/one holds, never.
    assert "disappeared from the store" in log.read_text()
    template_blob = layers[tiny.MEDIA_TEMPLATE]
    assert {d: fetched.count(d) for d in (config_blob, model_blob, shared_blob, template_blob)} == {
        config_blob: 1, model_blob: 1, shared_blob: 1, template_blob: 0}, fetched

    # Ollama sees the whole model and runs it; keep/one is untouched.
    name = reg.listed("race/pulled:v1")
    listed = ollama.listed()
    assert listed.get(name) == model_id(pulled)
    assert listed.get(reg.listed("keep/one:v1")) == model_id(keep)
    assert reg.listed("gone/soon:v1") not in listed
    assert "architecture llama" in " ".join(ollama("show", name).split())
    ollama.run_words(name, tiny)

    # Another pruning start: everything linked stays, byte for byte.
    ollama.restart(prune=True)
    for digest, data in [*pulled_blobs.items(), *keep_blobs.items()]:
        assert blob_path(ollama.store, digest).read_bytes() == data
    ok(olreg("verify"))
    assert ok(olreg("show", reg.listed("race/pulled:v1"))).stdout == pulled
