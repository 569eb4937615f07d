"""Docker credential helpers (`credsStore`, `credHelpers`) against Docker
Distribution with htpasswd: helper scripts on PATH answer
`docker-credential-<name> get` as Docker's protocol says; `auths` entries
with a password come first; no secret ever reaches the output."""

import base64
import json
import os

import pytest

from cli_helpers import stderr_lines

TINY = "library/tiny:latest"


@pytest.fixture
def helpers(tmp_path, basic_distribution):
    """A bin directory for helper scripts, a log of their calls, and the
    environment (PATH, DOCKER_CONFIG) that uses them."""

    class Helpers:
        bin = tmp_path / "bin"
        log = tmp_path / "helper.log"
        docker = tmp_path / "docker"
        dist = basic_distribution

        def add(self, name, script):
            """`docker-credential-NAME`: logs `NAME get SERVER`, then runs `script` (sh)."""
            path = self.bin / f"docker-credential-{name}"
            path.write_text(f'#!/bin/sh\nserver=$(cat)\necho "{name} $1 $server" >> "{self.log}"\n{script}\n')
            path.chmod(0o755)

        def answering(self, name, user, secret):
            self.add(name, f'printf \'{{"ServerURL":"%s","Username":"{user}","Secret":"{secret}"}}\' "$server"')

        def config(self, config):
            (self.docker / "config.json").write_text(json.dumps(config))
            return {"DOCKER_CONFIG": str(self.docker), "PATH": f"{self.bin}:{os.environ['PATH']}"}

        def calls(self):
            return self.log.read_text().splitlines() if self.log.exists() else []

    h = Helpers()
    h.bin.mkdir()
    h.docker.mkdir()
    h.add("broken", 'echo "HELPERSECRET-leak on stdout"; echo "HELPERSECRET-leak on stderr" >&2; exit 1')
    return h


def push(olreg, registry, helpers, env, *flags):
    assert olreg("pull", registry.name(TINY)).returncode == 0
    return olreg(*flags, "push", helpers.dist.name("library/cred:v1"), "--from", registry.name(TINY), env=env)


def test_creds_store_helper_logs_in(olreg, registry, helpers):
    helpers.answering("olregtest", helpers.dist.user, helpers.dist.password)
    result = push(olreg, registry, helpers, helpers.config({"credsStore": "olregtest"}))
    assert result.returncode == 0, result.stderr.decode()
    # Asked once, with `get` and the registry's host on stdin.
    assert helpers.calls() == [f"olregtest get {helpers.dist.host}"]


def test_cred_helpers_choose_per_host(olreg, registry, helpers):
    helpers.answering("good", helpers.dist.user, helpers.dist.password)
    env = helpers.config({"credHelpers": {helpers.dist.host: "good"}, "credsStore": "broken"})
    result = push(olreg, registry, helpers, env)
    assert result.returncode == 0, result.stderr.decode()
    assert helpers.calls() == [f"good get {helpers.dist.host}"]


def test_auths_with_a_password_come_first(olreg, registry, helpers):
    auth = base64.b64encode(f"{helpers.dist.user}:{helpers.dist.password}".encode()).decode()
    env = helpers.config({"auths": {helpers.dist.host: {"auth": auth}}, "credsStore": "broken"})
    result = push(olreg, registry, helpers, env)
    assert result.returncode == 0, result.stderr.decode()
    assert helpers.calls() == []
    # An entry without a password (as Docker Desktop writes them) defers to the helper.
    helpers.answering("good", helpers.dist.user, helpers.dist.password)
    env = helpers.config({"auths": {helpers.dist.host: {}}, "credsStore": "good"})
    assert push(olreg, registry, helpers, env).returncode == 0
    assert helpers.calls() == [f"good get {helpers.dist.host}"]


def test_helper_secrets_never_show(olreg, registry, helpers):
    helpers.answering("wrong", helpers.dist.user, "HELPERSECRET-wrong")
    result = push(olreg, registry, helpers, helpers.config({"credsStore": "wrong"}), "-vv")
    assert result.returncode == 1
    assert b"HELPERSECRET" not in result.stderr
    assert "HTTP 401" in stderr_lines(result)[-1]

    result = push(olreg, registry, helpers, helpers.config({"credsStore": "broken"}), "-vv")
    assert result.returncode == 1
    assert b"HELPERSECRET" not in result.stderr
    assert f"docker-credential-broken get for {helpers.dist.host}: it failed" in stderr_lines(result)[-1]


def test_helpers_that_know_nothing_or_are_missing(olreg, registry, helpers):
    helpers.add("empty", 'echo "credentials not found in native keychain"; exit 1')
    result = push(olreg, registry, helpers, helpers.config({"credsStore": "empty"}))
    assert result.returncode == 1
    assert "none is configured" in stderr_lines(result)[-1]

    result = push(olreg, registry, helpers, helpers.config({"credsStore": "not-installed"}))
    assert result.returncode == 1
    assert "docker-credential-not-installed get" in stderr_lines(result)[-1]
    assert "cannot run it" in stderr_lines(result)[-1]


@pytest.fixture
def token_distribution():
    """Docker Distribution behind its token server (identity token in .info)."""
    from conftest import Distribution

    reg = Distribution("token")
    yield reg
    reg.stop()


def test_identity_tokens_go_to_the_token_service(olreg, registry, helpers, token_distribution):
    identity = token_distribution.info["identity_token"]
    assert identity
    helpers.dist = token_distribution
    helpers.answering("ident", "<token>", identity)
    result = push(olreg, registry, helpers, helpers.config({"credsStore": "ident"}), "-vv")
    assert result.returncode == 0, result.stderr.decode()
    assert identity.encode() not in result.stderr
    assert any("token request" in line and "POST" in line for line in stderr_lines(result))


def test_identity_tokens_are_no_passwords(olreg, registry, helpers):
    helpers.answering("ident", "<token>", "HELPERSECRET-identity")
    result = push(olreg, registry, helpers, helpers.config({"credsStore": "ident"}))
    assert result.returncode == 1
    assert "identity token, which only a token service takes" in stderr_lines(result)[-1]
    assert b"HELPERSECRET" not in result.stderr
