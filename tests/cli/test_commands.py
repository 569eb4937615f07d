"""What each command does to the store and the registry, and its exit status."""

import re

import pytest

from cli_helpers import blob_path, corrupt, error_line
from conftest import Olreg, Registry

TINY = "library/tiny:latest"
B = "other/b:v2"


def digests(model):
    """Every blob of a model as the registry describes it, config included."""
    return {model["config"]["digest"]} | {layer["digest"] for layer in model["layers"]}


def pull(olreg, registry, repo_tag):
    result = olreg("pull", registry.name(repo_tag))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    return result


def test_pull_list_show(olreg, registry, store):
    pull(olreg, registry, TINY)

    listed = olreg("list")
    assert listed.returncode == 0
    assert listed.stdout == f"{registry.listed(TINY)}\n".encode()
    assert listed.stderr == b""

    shown = olreg("show", registry.name(TINY))
    assert shown.returncode == 0
    assert shown.stderr == b""
    # Byte for byte what the registry serves (its digest is the hash of these bytes).
    assert shown.stdout == registry.manifest("library/tiny", "latest")
    assert shown.stdout == registry.model(TINY)["manifest"].encode()

    for layer in registry.model(TINY)["layers"]:
        assert blob_path(store, layer["digest"]).stat().st_size == layer["size"]


def test_list_is_sorted_and_fully_qualified(olreg, registry):
    pull(olreg, registry, B)
    pull(olreg, registry, "library/tiny")  # the tag defaults to latest
    result = olreg("list")
    assert result.returncode == 0
    assert result.stdout.decode().splitlines() == sorted([registry.listed(B), registry.listed(TINY)])


def test_list_of_an_empty_store(olreg):
    result = olreg("list")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_show_of_a_missing_model_fails(olreg, registry):
    result = olreg("show", registry.name("library/absent:latest"))
    assert result.returncode == 1
    assert result.stdout == b""
    assert "absent" in error_line(result)


def test_push_from_another_name(olreg, registry, second_registry, tmp_path, home):
    pull(olreg, registry, TINY)
    target = second_registry.name("team/copy:v1")
    result = olreg("push", target, "--from", registry.name(TINY))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    assert second_registry.manifest("team/copy", "v1") == registry.manifest("library/tiny", "latest")

    # What was pushed pulls back, identical, into an empty store.
    fresh = Olreg(tmp_path / "fresh", home)
    assert fresh("pull", target).returncode == 0
    assert fresh("show", target).stdout == registry.manifest("library/tiny", "latest")


def test_push_under_its_own_name(olreg, registry):
    """Every blob is already there: nothing to upload, and still a success."""
    pull(olreg, registry, B)
    result = olreg("push", registry.name(B))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    assert "exists" in result.stderr.decode()


def test_push_of_a_missing_model_fails(olreg, registry, second_registry):
    result = olreg("push", second_registry.name("team/x:v1"), "--from", registry.name("library/absent:v1"))
    assert result.returncode == 1
    assert "absent" in error_line(result)


def test_rm_is_silent_and_keeps_blobs(olreg, registry, store):
    pull(olreg, registry, TINY)
    result = olreg("rm", registry.name(TINY))
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert olreg("list").stdout == b""
    assert olreg("show", registry.name(TINY)).returncode == 1
    for digest in digests(registry.model(TINY)):
        assert blob_path(store, digest).exists()

    again = olreg("rm", registry.name(TINY))
    assert again.returncode == 1
    error_line(again)


def test_prune_removes_only_unreferenced_blobs(olreg, registry, store):
    pull(olreg, registry, TINY)
    pull(olreg, registry, B)
    assert olreg("rm", registry.name(TINY)).returncode == 0
    kept = digests(registry.model(B))
    gone = digests(registry.model(TINY)) - kept

    result = olreg("prune")
    assert result.returncode == 0
    assert result.stdout == b""
    match = re.fullmatch(r"olreg: removed (\d+) blobs?, freed [\d.]+ (B|KiB|MiB)\n", result.stderr.decode())
    assert match, result.stderr
    assert int(match.group(1)) == len(gone)
    for digest in gone:
        assert not blob_path(store, digest).exists()
    for digest in kept:
        assert blob_path(store, digest).exists()

    again = olreg("prune")
    assert again.stderr == b"olreg: removed 0 blobs, freed 0 B\n"
    assert olreg("-q", "prune").stderr == b""
    assert olreg("verify").returncode == 0


def test_verify_finds_a_corrupt_blob(olreg, registry, store):
    pull(olreg, registry, TINY)
    pull(olreg, registry, B)
    clean = olreg("verify")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == b""

    layer = max(registry.model(TINY)["layers"], key=lambda layer: layer["size"])
    corrupt(blob_path(store, layer["digest"]))
    for args in (["verify"], ["verify", registry.name(TINY)], ["-q", "verify"]):
        result = olreg(*args)
        assert result.returncode == 1, args
        assert result.stdout == b""
        # Progress may mention the failure too; the problem itself is an `olreg: ` line.
        problems = [line for line in result.stderr.decode().splitlines() if line.startswith("olreg: ")]
        assert len(problems) == 1, result.stderr
        assert layer["digest"] in problems[0] and "corrupt" in problems[0]
    # The other model's blobs are fine.
    assert olreg("verify", registry.name(B)).returncode == 0


def test_verify_finds_a_missing_blob(olreg, registry, store):
    pull(olreg, registry, TINY)
    digest = registry.model(TINY)["layers"][0]["digest"]
    blob_path(store, digest).unlink()
    result = olreg("-q", "verify", registry.name(TINY))
    assert result.returncode == 1
    assert digest in error_line(result)


def test_pull_of_a_missing_model_fails(olreg, registry, store):
    result = olreg("pull", registry.name("library/absent:latest"))
    assert result.returncode == 1
    assert result.stdout == b""
    line = error_line(result)
    assert "404" in line and "absent" in line
    assert not (store / "manifests").exists() or olreg("list").stdout == b""


@pytest.mark.parametrize("name", ["bad name!!", "../../etc/passwd", "a/b/c/d/e"])
def test_invalid_name_fails(olreg, name):
    result = olreg("pull", name)
    assert result.returncode == 1
    assert "invalid" in error_line(result)


def test_unauthorized_fails(olreg):
    locked = Registry("--auth", "basic:alice:secret", "--model", "private/m:v1=1K")
    try:
        result = olreg("pull", locked.name("private/m:v1"))
    finally:
        locked.stop()
    assert result.returncode == 1
    assert result.stdout == b""
    error_line(result)


def test_a_multi_line_registry_error_is_one_line(olreg, registry):
    """Whatever a registry sends, the failure is a single `olreg: ` line."""
    registry.fault("manifest", {"status": {"code": 403, "body": {"text": "first line\nsecond line\r\nthird"},
                                           "retry_after": None}})
    try:
        result = olreg("pull", registry.name(TINY))
    finally:
        registry.clear_faults()
    assert result.returncode == 1
    assert "first line" in error_line(result)
