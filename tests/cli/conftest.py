"""Fixtures for the olreg program's contract tests.

The program under test is $OLREG_CLI (default examples-c/olreg), run as a
real process against olreg-testreg ($OLREG_TESTREG: its own registry, or
Docker Distribution started through it), each test with its own
store and a HOME of its own, so nothing of the developer's (~/.ollama key,
Docker logins, OLLAMA_MODELS) leaks in.
"""

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OLREG = Path(os.environ.get("OLREG_CLI") or REPO / "examples-c" / "olreg")
PULL_EXAMPLE = OLREG.parent / "pull"
TESTREG = Path(os.environ.get("OLREG_TESTREG") or REPO / "target" / "release" / "olreg-testreg")

# Environment variables that would change what the program does.
SCRUBBED = (
    "OLLAMA_MODELS",
    "OLLAMA_REGISTRY_MAXSTREAMS",
    "OLREG_MIRRORS",
    "OLREG_SIGNED_HOSTS",
    "DOCKER_CONFIG",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
    "ALL_PROXY",
)


class Registry:
    """olreg-testreg serve, as a child that dies with its stdin."""

    def __init__(self, *args):
        if not TESTREG.exists():
            pytest.fail(f"no test registry at {TESTREG}: run `make lib`")
        self.proc = subprocess.Popen(
            [str(TESTREG), "serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        line = self.proc.stdout.readline()
        if not line:
            self.proc.kill()
            pytest.fail("olreg-testreg serve printed nothing")
        self.info = json.loads(line)
        self.url = self.info["url"]
        self.host = self.info["host"]

    def name(self, repo_tag):
        """The name of a model here, as the program takes it."""
        return f"{self.url}/{repo_tag}"

    def listed(self, repo_tag):
        """The same name as `olreg list` prints it."""
        return f"{self.host}/{repo_tag}"

    def model(self, name):
        return next(m for m in self.info["models"] if m["name"] == name)

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + "/_testreg/" + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def manifest(self, repo, tag):
        """The exact bytes the registry serves for repo:tag."""
        return self.control("GET", f"manifests/{repo}/{tag}")

    def raw(self, method, path, data):
        """A control request with raw bytes as its body."""
        request = urllib.request.Request(self.url + "/_testreg/" + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def add_blob(self, data):
        """Stores `data` as a blob; returns its digest."""
        return json.loads(self.raw("POST", "blobs", data))["digest"]

    def put_manifest(self, repo, tag, body):
        """Serves `body` (bytes, as they are) as the manifest of repo:tag."""
        self.raw("PUT", f"manifests/{repo}/{tag}", body)

    def requests(self):
        """Every request the registry has seen (not the control API's)."""
        return json.loads(self.control("GET", "requests"))

    def fault(self, target, kind, times=0):
        self.control("POST", "faults", {"target": target, "kind": kind, "times": times})

    def clear_faults(self):
        self.control("DELETE", "faults")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Distribution:
    """olreg-testreg distribution: Docker Distribution (with `auth` none, basic
    or token), as a child that stops it when its stdin closes."""

    def __init__(self, auth="none"):
        if not TESTREG.exists():
            pytest.fail(f"no test registry at {TESTREG}: run `make lib`")
        self.proc = subprocess.Popen(
            [str(TESTREG), "distribution", "--auth", auth],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        line = self.proc.stdout.readline()
        if not line:
            self.proc.kill()
            pytest.fail("olreg-testreg distribution printed nothing (is docker-registry installed?)")
        self.info = json.loads(line)
        self.url = self.info["url"]
        self.host = self.info["host"]
        self.user = self.info["user"]
        self.password = self.info["password"]

    def name(self, repo_tag):
        return f"{self.url}/{repo_tag}"

    def listed(self, repo_tag):
        return f"{self.host}/{repo_tag}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def registry():
    """A registry with a small model of four blobs and one of two larger ones."""
    reg = Registry(
        "--model", "library/tiny:latest=1K,2K,300K",
        "--model", "library/big:latest=8M",
        "--model", "other/b:v2=3K",
        "--seed", "5",
    )
    yield reg
    reg.stop()


@pytest.fixture
def second_registry():
    """An empty registry to push to."""
    reg = Registry()
    yield reg
    reg.stop()


@pytest.fixture
def distribution():
    """Docker Distribution without auth."""
    reg = Distribution()
    yield reg
    reg.stop()


@pytest.fixture
def basic_distribution():
    """Docker Distribution behind Basic auth (its user and password in .user, .password)."""
    reg = Distribution("basic")
    yield reg
    reg.stop()


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def store(tmp_path):
    return tmp_path / "models"


class Olreg:
    """Runs the program with a clean environment and `--models store` unless told otherwise."""

    def __init__(self, store, home):
        self.store = store
        self.home = home
        if not OLREG.exists():
            pytest.fail(f"no olreg program at {OLREG}: run `make cli`")

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env["HOME"] = str(self.home)
        env.update(extra or {})
        return env

    def argv(self, args, models=True):
        return [str(OLREG), *(["--models", str(self.store)] if models else []), *args]

    def __call__(self, *args, models=True, env=None, timeout=120):
        """Runs olreg ARGS; returns the CompletedProcess (stdout and stderr as bytes)."""
        return subprocess.run(
            self.argv(args, models),
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )

    def popen(self, *args, env=None, **kwargs):
        return subprocess.Popen(self.argv(args), env=self.env(env), stdin=subprocess.DEVNULL, **kwargs)


@pytest.fixture
def olreg(store, home):
    return Olreg(store, home)
