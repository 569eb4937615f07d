"""What a hostile registry must not get out of the olreg program
(docs/security.md): secrets in URLs never reach the terminal or the logs,
registry text never reaches the terminal raw, and a redirected upload step
is a failure, not a push."""

import json

import pytest

from cli_helpers import error_line, stderr_lines
from conftest import REPO, Registry

MODEL = "library/sec:v1"

# A storage URL nobody answers (port 1), carrying the secrets a presigned
# URL carries: in its query and, for good measure, as userinfo.
SECRETS = ("SIGSECRET", "CREDSECRET", "SIGPARAM", "TOKSECRET", "PASSSECRET")
STORAGE = ("http://user:PASSSECRET@127.0.0.1:1/bucket/x?X-Amz-Signature=SIGSECRET"
           "&X-Amz-Credential=CREDSECRET&sig=SIGPARAM&token=TOKSECRET")


@pytest.fixture
def fresh():
    """A registry of its own (the tests inject faults forever)."""
    reg = Registry("--model", f"{MODEL}=1K,2K", "--seed", "9")
    yield reg
    reg.stop()


def assert_no_secret(result):
    for secret in SECRETS:
        assert secret.encode() not in result.stderr + result.stdout, result.stderr.decode()


def test_presigned_download_urls_are_redacted_everywhere(olreg, fresh):
    fresh.fault({"blob": {"digest": None}}, {"redirect": {"location": STORAGE}})
    result = olreg("-vv", "pull", fresh.name(MODEL))
    assert result.returncode == 1
    assert_no_secret(result)
    lines = stderr_lines(result)
    assert any("retrying: " in line for line in lines), lines
    assert "http://127.0.0.1:1/bucket/x?…" in error_line_of(lines)


def test_presigned_upload_urls_are_redacted_everywhere(olreg, fresh, second_registry):
    assert olreg("pull", fresh.name(MODEL)).returncode == 0
    second_registry.fault("upload", {"upload_location": {"location": STORAGE}})
    result = olreg("-vv", "push", second_registry.name(MODEL), "--from", fresh.name(MODEL))
    assert result.returncode == 1
    assert_no_secret(result)
    lines = stderr_lines(result)
    assert any("retrying: " in line for line in lines), lines
    assert "http://127.0.0.1:1/bucket/x?…" in error_line_of(lines)


def error_line_of(lines):
    """The final `olreg: ` line of a verbose run (logs start `olreg: <level>:`)."""
    finals = [line for line in lines if line.startswith("olreg: ")
              and not line.startswith(("olreg: debug:", "olreg: info:", "olreg: warn:", "olreg: error:"))]
    assert len(finals) == 1, lines
    return finals[0]


def test_a_redirected_manifest_put_is_not_a_push(olreg, fresh, second_registry):
    assert olreg("pull", fresh.name(MODEL)).returncode == 0
    second_registry.fault("manifest_put", {"redirect": {"location": "/elsewhere", "code": 308}})
    result = olreg("push", second_registry.name(MODEL), "--from", fresh.name(MODEL))
    assert result.returncode == 1
    assert "HTTP 308 Permanent Redirect to PUT" in error_line_of(stderr_lines(result))
    assert not any(line.startswith("pushed") for line in stderr_lines(result))


# Window title, bell, clear screen, colours, and a newline that forges a line.
EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x9b1m\nolreg: forged line\r"


def assert_neutral(result):
    for control in (b"\x1b", b"\x07", b"\r", b"\xc2\x9b"):
        assert control not in result.stderr, result.stderr
    assert not any(line.startswith("olreg: forged") for line in stderr_lines(result)), result.stderr


def test_registry_text_never_reaches_the_terminal_raw(olreg, fresh):
    # A retried 503 (Ollama's JSON form), then a final 400 (OCI's form, every field evil).
    fresh.fault("manifest", {"status": {"code": 503, "body": {"ollama": {"code": "BUSY" + EVIL, "message": EVIL}}}},
                times=1)
    fresh.fault("manifest", {"status": {"code": 400, "body": {"oci": {
        "code": "DENIED" + EVIL, "message": EVIL, "detail": {"why": EVIL}}}}})
    result = olreg("-v", "pull", fresh.name(MODEL))
    assert result.returncode == 1
    assert_neutral(result)
    assert any(line.startswith("olreg: warn: ") and "pwned" in line for line in stderr_lines(result))
    assert "pwned" in error_line_of(stderr_lines(result))


def test_blob_retry_lines_are_neutral(olreg, fresh):
    fresh.fault({"blob_store": {"digest": None}},
                {"status": {"code": 503, "body": {"json": {"errors": [{"code": EVIL, "message": EVIL}]}}}}, times=1)
    result = olreg("pull", fresh.name(MODEL))
    assert result.returncode == 0, result.stderr
    assert_neutral(result)
    assert any("retrying: " in line and "pwned" in line for line in stderr_lines(result)), result.stderr


def test_signed_hosts_come_from_the_environment(olreg, home):
    """With ~/.ollama/id_ed25519, a registry demanding Ollama's signed token
    unasked gets it only when $OLREG_SIGNED_HOSTS lists it."""
    vector = json.loads((REPO / "tests" / "fixtures" / "auth-vector.json").read_text())
    key = home / ".ollama" / "id_ed25519"
    key.parent.mkdir()
    key.write_text(vector["private_key_openssh"])
    key.chmod(0o600)
    reg = Registry("--auth", "legacy", "--model", f"{MODEL}=1K")
    try:
        refused = olreg("pull", reg.name(MODEL))
        assert refused.returncode == 1
        assert "HTTP 401" in error_line(refused)
        assert olreg("pull", reg.name(MODEL), env={"OLREG_SIGNED_HOSTS": f"other.example, {reg.host}"}).returncode == 0
    finally:
        reg.stop()
