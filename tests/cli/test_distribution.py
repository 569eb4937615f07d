"""A model from the test registry goes to Docker Distribution and back into a
fresh store byte for byte; Basic credentials come from $DOCKER_CONFIG/config.json."""

import base64
import json

import pytest

from cli_helpers import error_line
from conftest import Olreg

TINY = "library/tiny:latest"
BIG = "library/big:latest"
TARGET = "library/rt:v1"


def ok(result):
    """A command that must succeed with nothing on stdout."""
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    return result


def blobs(store):
    """Every blob file of a store, by name, with its bytes."""
    return {path.name: path.read_bytes() for path in (store / "blobs").iterdir()}


def model_blobs(model):
    """The blob file names of a model as the registry describes it, config included."""
    return {d.replace(":", "-") for d in [model["config"]["digest"]] + [layer["digest"] for layer in model["layers"]]}


def docker_config(directory, dist):
    """A Docker config.json in `directory` with `dist`'s login; returns the environment naming it."""
    directory.mkdir()
    auth = base64.b64encode(f"{dist.user}:{dist.password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {dist.host: {"auth": auth}}}))
    return {"DOCKER_CONFIG": str(directory)}


def round_trip(registry, source, dist, tmp_path, home, env=None):
    """Pulls `source` into store A, pushes it to `dist`, pulls that into store B, checks B."""
    a = Olreg(tmp_path / "a", home)
    b = Olreg(tmp_path / "b", home)
    target = dist.name(TARGET)
    repo, tag = source.split(":")

    ok(a("pull", registry.name(source), env=env))
    ok(a("push", target, "--from", registry.name(source), env=env))
    ok(b("pull", target, env=env))

    shown = b("show", target, env=env)
    assert (shown.returncode, shown.stderr) == (0, b"")
    assert shown.stdout == registry.manifest(repo, tag)

    verified = b("verify", env=env)
    assert verified.returncode == 0, verified.stderr.decode()
    assert verified.stdout == b""

    listed = b("list", env=env)
    assert (listed.returncode, listed.stderr) == (0, b"")
    assert listed.stdout == f"{dist.listed(TARGET)}\n".encode()

    assert set(blobs(b.store)) == model_blobs(registry.model(source))
    assert blobs(b.store) == blobs(a.store)


@pytest.mark.parametrize("source", [TINY, BIG])
def test_round_trip(registry, distribution, tmp_path, home, source):
    round_trip(registry, source, distribution, tmp_path, home)


def test_round_trip_with_basic_auth_from_docker_config(registry, basic_distribution, tmp_path, home):
    env = docker_config(tmp_path / "docker", basic_distribution)
    round_trip(registry, TINY, basic_distribution, tmp_path, home, env=env)


def test_basic_auth_without_docker_config_fails(registry, basic_distribution, tmp_path, home):
    dist = basic_distribution
    a = Olreg(tmp_path / "a", home)
    b = Olreg(tmp_path / "b", home)
    target = dist.name(TARGET)
    ok(a("pull", registry.name(TINY)))

    pushed = a("push", target, "--from", registry.name(TINY))
    assert pushed.returncode == 1
    assert pushed.stdout == b""
    # Progress may mention the failure too; the failure itself is one `olreg: ` line.
    problems = [line for line in pushed.stderr.decode().splitlines() if line.startswith("olreg: ")]
    assert len(problems) == 1, pushed.stderr
    assert dist.host in problems[0] and "401" in problems[0]
    quiet = a("-q", "push", target, "--from", registry.name(TINY))
    assert quiet.returncode == 1
    assert dist.host in error_line(quiet)

    # With the login it goes up; without it, it does not come down.
    ok(a("push", target, "--from", registry.name(TINY), env=docker_config(tmp_path / "docker", dist)))
    pulled = b("-q", "pull", target)
    assert pulled.returncode == 1
    assert pulled.stdout == b""
    line = error_line(pulled)
    assert dist.host in line and "401" in line
    assert b("list").stdout == b""
