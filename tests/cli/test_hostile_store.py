"""A hostile store directory: links planted where olreg reads, writes or
deletes, special files, oversized manifests, and manifests that list one
digest with two sizes. Nothing outside the root is ever touched, and each
case fails with a clear error naming the path (verify: the blob is corrupt).
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import blob_path, error_line

TINY = "library/tiny:latest"
LINK_REFUSED = "is a symbolic link (olreg follows no links inside the store)"


def pull(olreg, registry, repo_tag=TINY):
    result = olreg("-q", "pull", registry.name(repo_tag))
    assert result.returncode == 0, result.stderr.decode()


def manifest_file(store, registry, repo_tag=TINY):
    repo, tag = repo_tag.split(":")
    return Path(store) / "manifests" / registry.host / repo / tag


def problem_lines(result):
    return [line for line in result.stderr.decode().splitlines() if line.startswith("olreg: ")]


@pytest.fixture
def outside(tmp_path):
    """A directory beside the store that olreg must never touch."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


def test_a_linked_partial_file_is_never_written_through(olreg, registry, store, outside):
    layer = max(registry.model(TINY)["layers"], key=lambda layer: layer["size"])
    victim = outside / "victim"
    victim.write_bytes(b"precious")
    partial = Path(store) / ".olreg" / "partial" / (layer["digest"].replace(":", "-") + ".part")
    partial.parent.mkdir(parents=True)
    partial.symlink_to(victim)

    result = olreg("-q", "pull", registry.name(TINY))
    assert result.returncode == 1
    line = error_line(result)
    assert str(partial) in line and LINK_REFUSED in line, line
    assert victim.read_bytes() == b"precious"
    assert not os.path.lexists(blob_path(store, layer["digest"]))
    assert olreg("list").stdout == b""

    # prune removes the planted link itself, never what it points to.
    assert olreg("-q", "prune").returncode == 0
    assert not os.path.lexists(partial)
    assert victim.read_bytes() == b"precious"
    pull(olreg, registry)


def test_a_linked_gc_lock_is_refused(olreg, registry, store, outside):
    target = outside / "created-through-the-link"
    lock = Path(store) / ".olreg" / "locks" / "gc.lock"
    lock.parent.mkdir(parents=True)
    lock.symlink_to(target)
    for args in (["pull", registry.name(TINY)], ["prune"]):
        result = olreg("-q", *args)
        assert result.returncode == 1, args
        line = error_line(result)
        assert str(lock) in line and LINK_REFUSED in line, line
    assert not os.path.lexists(target)


@pytest.mark.parametrize(
    "linked", ["blobs", "manifests", ".olreg", ".olreg/tmp", ".olreg/staged", ".olreg/locks", ".olreg/pins"]
)
def test_a_pull_follows_no_linked_directory(olreg, registry, store, outside, linked):
    link = Path(store) / linked
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)
    result = olreg("-q", "pull", registry.name(TINY))
    assert result.returncode == 1
    line = error_line(result)
    assert str(link) in line and LINK_REFUSED in line, line
    assert list(outside.iterdir()) == [], "nothing was written through the link"


def test_rm_never_deletes_through_a_linked_host_directory(olreg, registry, store, outside):
    pull(olreg, registry)
    # The host directory moves outside the root and a link takes its place.
    host_dir = Path(store) / "manifests" / registry.host
    host_dir.rename(outside / "host")
    host_dir.symlink_to(outside / "host", target_is_directory=True)
    manifest = outside / "host" / "library" / "tiny" / "latest"
    assert manifest.is_file()

    for args in (["rm", registry.name(TINY)], ["show", registry.name(TINY)], ["list"], ["prune"]):
        result = olreg("-q", *args)
        assert result.returncode == 1, args
        assert result.stdout == b"", args
        line = error_line(result)
        assert str(host_dir) in line and LINK_REFUSED in line, line
    assert manifest.is_file(), "rm deleted a file outside the store"


def test_show_never_prints_what_a_linked_manifest_points_to(olreg, registry, store, outside):
    pull(olreg, registry)
    secret = outside / "secret"
    secret.write_bytes(b"root:x:0:0:secret\n")
    manifest = manifest_file(store, registry)
    manifest.unlink()
    manifest.symlink_to(secret)
    for args in (["show", registry.name(TINY)], ["verify", registry.name(TINY)],
                 ["push", registry.name("team/copy:v1"), "--from", registry.name(TINY)]):
        result = olreg("-q", *args)
        assert result.returncode == 1, args
        assert result.stdout == b""
        line = error_line(result)
        assert str(manifest) in line and LINK_REFUSED in line, line
        assert b"secret" not in result.stderr


def link_blob_outside(store, registry, outside):
    """Moves tiny's largest layer outside the store and links it back;
    returns the layer. The link leads to the right bytes: only the link
    itself is wrong."""
    layer = max(registry.model(TINY)["layers"], key=lambda layer: layer["size"])
    blob = blob_path(store, layer["digest"])
    blob.rename(outside / "copy")
    blob.symlink_to(outside / "copy")
    return layer


def test_verify_calls_a_linked_blob_corrupt_for_the_store_and_the_model(olreg, registry, store, outside):
    pull(olreg, registry)
    layer = link_blob_outside(store, registry, outside)
    for args in (["verify"], ["verify", registry.name(TINY)]):
        result = olreg("-q", *args)
        assert result.returncode == 1, (args, result.stderr)
        problems = problem_lines(result)
        assert len(problems) == 1, result.stderr
        assert layer["digest"] in problems[0] and "corrupt" in problems[0], problems[0]
        assert "symbolic link" in problems[0]


def test_a_pull_replaces_a_linked_blob_and_leaves_its_target_alone(olreg, registry, store, outside):
    layer = max(registry.model(TINY)["layers"], key=lambda layer: layer["size"])
    # The right size, the wrong bytes: a link is never taken for the blob.
    decoy = outside / "decoy"
    decoy.write_bytes(b"\0" * layer["size"])
    blob = blob_path(store, layer["digest"])
    blob.parent.mkdir(parents=True)
    blob.symlink_to(decoy)
    pull(olreg, registry)
    assert not blob.is_symlink() and blob.is_file()
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == layer["digest"].split(":")[1]
    assert decoy.read_bytes() == b"\0" * layer["size"]
    assert olreg("-q", "verify").returncode == 0


def test_push_never_uploads_through_a_linked_blob(olreg, registry, second_registry, store, outside):
    pull(olreg, registry)
    blob = blob_path(store, link_blob_outside(store, registry, outside)["digest"])
    result = olreg("-q", "push", second_registry.name("team/copy:v1"), "--from", registry.name(TINY))
    assert result.returncode == 1
    line = error_line(result)
    assert str(blob) in line and LINK_REFUSED in line, line
    assert second_registry.requests() == [], "not one request was made"


def test_a_fifo_manifest_is_refused_at_once(olreg, registry, store):
    pull(olreg, registry)
    manifest = manifest_file(store, registry)
    manifest.unlink()
    os.mkfifo(manifest)
    for args in (["show", registry.name(TINY)], ["verify", registry.name(TINY)], ["list"]):
        result = olreg("-q", *args, timeout=20)
        assert result.returncode == 1, args
        line = error_line(result)
        assert str(manifest) in line and "not a regular file" in line, line


def peak_rss_mib(argv, env):
    """Runs argv (stdout discarded) in a fresh Python process whose only
    child it is; returns (returncode, stderr, the child's peak resident
    memory in MiB)."""
    probe = (
        "import resource, subprocess, sys, json\n"
        "r = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,\n"
        "                   stderr=subprocess.PIPE)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "sys.stdout.write(json.dumps([r.returncode, r.stderr.decode('latin-1')[:4096], peak]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, *argv], env=env, capture_output=True, timeout=300, check=True)
    code, stderr, peak_kib = json.loads(out.stdout)
    return code, stderr, peak_kib / 1024


def test_a_huge_manifest_file_costs_no_memory(olreg, registry, second_registry, store):
    """A 1 GiB manifest (a sparse file: no disk used) is refused by every
    command that reads manifests without reading it into memory."""
    pull(olreg, registry)
    huge = manifest_file(store, registry, "library/huge:latest")
    huge.parent.mkdir(parents=True)
    with open(huge, "wb") as f:
        f.truncate(1 << 30)
    name = registry.name("library/huge:latest")
    expect = {
        ("show", name): (1, "1073741824 bytes, over the 4194304 byte limit"),
        ("verify", name): (1, "1073741824 bytes, over the 4194304 byte limit"),
        ("push", second_registry.name("team/huge:v1"), "--from", name): (1, "over the 4194304 byte limit"),
        # prune still protects every digest in its text (read a piece at a time).
        ("prune",): (0, ""),
        ("list",): (0, ""),
    }
    for args, (code, message) in expect.items():
        got, stderr, peak = peak_rss_mib(olreg.argv(["-q", *args]), olreg.env())
        assert peak < 100, f"{args}: peak {peak:.0f} MiB"
        assert got == code, (args, stderr)
        assert message in stderr, (args, stderr)
    assert olreg("list").stdout.decode().splitlines() == [
        registry.listed("library/huge:latest"),
        registry.listed(TINY),
    ]


def test_a_manifest_listing_one_digest_with_two_sizes_is_refused(olreg, second_registry):
    data = b"the one content"
    digest = second_registry.add_blob(data)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    config = second_registry.add_blob(b"{}")
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config, "size": 2},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": len(data)},
            {"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": len(data) + 1000},
        ],
    }).encode()
    second_registry.put_manifest("team/twice", "v1", manifest)

    result = olreg("-q", "pull", second_registry.name("team/twice:v1"))
    assert result.returncode == 1
    line = error_line(result)
    assert "invalid manifest" in line and "listed with two sizes" in line and digest in line, line
    assert olreg("list").stdout == b""
    paths = [r["path_and_query"] for r in second_registry.requests()]
    assert not any("/blobs/" in path for path in paths), paths
