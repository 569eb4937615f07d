"""Interoperability through the olreg program: an existence check that fails
does not fail a push, `--platform` picks an image index's entry, and a second
repository on Docker Distribution gets mounts instead of uploads."""

import hashlib
import json

from cli_helpers import error_line
from conftest import Olreg

TINY = "library/tiny:latest"
TINY_BLOBS = 4  # three layers and the config

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def ok(result):
    assert result.returncode == 0, result.stderr.decode()
    return result


def test_push_goes_on_when_head_fails(registry, second_registry, tmp_path, home):
    a = Olreg(tmp_path / "a", home)
    ok(a("pull", registry.name(TINY)))
    second_registry.fault({"blob_head": {}}, {"status": {"code": 500}})
    ok(a("push", second_registry.name("ns/copy:v1"), "--from", registry.name(TINY)))
    assert second_registry.manifest("ns/copy", "v1") == registry.manifest("library/tiny", "latest")
    heads = [r for r in second_registry.requests()
             if r["method"] == "HEAD" and "/blobs/" in r["path_and_query"]]
    assert len(heads) == TINY_BLOBS, "one HEAD per blob, none retried"


def multi_platform(reg):
    """`ns/m:v1` on `reg`: an OCI index of an amd64 and an arm64 model."""
    entries = []
    models = {}
    for arch, seed in (("amd64", 81), ("arm64", 82)):
        model = json.loads(reg.control("POST", "models", {"name": f"ns/m:{arch}", "layer_sizes": [1000], "seed": seed}))
        manifest = reg.manifest("ns/m", arch)
        models[arch] = manifest
        entries.append({
            "mediaType": json.loads(manifest)["mediaType"],
            "digest": model["digest"],
            "size": len(manifest),
            "platform": {"os": "linux", "architecture": arch},
        })
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    reg.put_manifest("ns/m", "v1", index)
    return models, index


def test_platform_picks_the_index_entry(second_registry, tmp_path, home):
    models, index = multi_platform(second_registry)
    name = second_registry.name("ns/m:v1")
    a = Olreg(tmp_path / "a", home)
    ok(a("--platform", "linux/arm64", "pull", name))
    shown = ok(a("show", name))
    assert shown.stdout == models["arm64"]

    # By the index's digest too, with --platform after the other options.
    b = Olreg(tmp_path / "b", home)
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    ok(b("-q", "--platform=linux/amd64", "pull", f"{name}@{digest}"))
    assert ok(b("show", name)).stdout == models["amd64"]


def test_an_index_without_the_platform_lists_what_it_has(second_registry, tmp_path, home):
    multi_platform(second_registry)
    a = Olreg(tmp_path / "a", home)
    result = a("-q", "--platform", "windows/amd64", "pull", second_registry.name("ns/m:v1"))
    assert result.returncode == 1
    line = error_line(result)
    for part in ("windows/amd64", "image index", "linux/amd64, linux/arm64"):
        assert part in line, line
    assert a("list").stdout == b""


def test_a_malformed_platform_is_refused(registry, tmp_path, home):
    a = Olreg(tmp_path / "a", home)
    for bad in ("linux", "linux/amd64/v8/x", "linux/am d64"):
        result = a("--platform", bad, "pull", registry.name(TINY))
        assert result.returncode == 1, bad
        line = error_line(result)
        assert "platform" in line and "os/arch" in line, line
    missing = a("pull", registry.name(TINY), "--platform")
    assert missing.returncode == 2


def test_second_repository_is_mounted(registry, distribution, tmp_path, home):
    a = Olreg(tmp_path / "a", home)
    ok(a("pull", registry.name(TINY)))
    ok(a("push", distribution.name("team/one:v1"), "--from", registry.name(TINY)))
    second = ok(a("-v", "push", distribution.name("team/two:v1"), "--from", registry.name(TINY)))
    mounted = [line for line in second.stderr.decode().splitlines() if "mounted from team/one" in line]
    assert len(mounted) == TINY_BLOBS, second.stderr.decode()
