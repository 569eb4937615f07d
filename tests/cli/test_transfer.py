"""copy, export and import as commands: registry to registry without the
store, a model out to an OCI layout (directory or .tar) and back in
byte for byte, --ref, and a damaged layout refused with the blob's digest."""

import json
import tarfile
import time

from cli_helpers import error_line
from conftest import Olreg

TINY = "library/tiny:latest"


def ok(result):
    """A command that must succeed with nothing on stdout."""
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    return result


def test_copy_between_registries_leaves_the_store_alone(registry, distribution, tmp_path, home):
    olreg = Olreg(tmp_path / "store", home)
    target = distribution.name("team/copied:v1")
    ok(olreg("copy", registry.name(TINY), target))
    assert not (tmp_path / "store" / "blobs").exists()
    assert not (tmp_path / "store" / "manifests").exists()
    # A second copy succeeds too (every blob is there already).
    ok(olreg("copy", registry.name(TINY), target))

    reader = Olreg(tmp_path / "reader", home)
    ok(reader("pull", target))
    shown = reader("show", target)
    assert shown.stdout == registry.manifest("library/tiny", "latest")


def test_copy_of_a_missing_model_fails_with_its_name(registry, distribution, tmp_path, home):
    olreg = Olreg(tmp_path / "store", home)
    result = olreg("-q", "copy", registry.name("library/absent:v1"), distribution.name("x/y:z"))
    assert result.returncode == 1
    line = error_line(result)
    assert "library/absent" in line and "MANIFEST_UNKNOWN" in line, line


def test_export_and_import_round_trip(registry, tmp_path, home):
    olreg = Olreg(tmp_path / "store", home)
    ok(olreg("pull", registry.name(TINY)))
    manifest = registry.manifest("library/tiny", "latest")
    for dest in (tmp_path / "layout", tmp_path / "layout.tar"):
        ok(olreg("export", registry.name(TINY), str(dest)))
        other = Olreg(tmp_path / f"other-{dest.name}", home)
        ok(other("import", str(dest), "local/tiny:v1"))
        assert other("show", "local/tiny:v1").stdout == manifest
        verified = other("verify")
        assert verified.returncode == 0, verified.stderr.decode()

    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    with tarfile.open(tmp_path / "layout.tar") as tar:
        names = tar.getnames()
    assert "oci-layout" in names and "index.json" in names


def test_import_with_several_images_needs_a_ref(registry, tmp_path, home):
    olreg = Olreg(tmp_path / "store", home)
    ok(olreg("pull", registry.name(TINY)))
    ok(olreg("pull", registry.name("other/b:v2")))
    layout = tmp_path / "both"
    ok(olreg("export", registry.name(TINY), str(layout)))
    ok(olreg("export", registry.name("other/b:v2"), str(layout)))

    other = Olreg(tmp_path / "other", home)
    result = other("-q", "import", str(layout), "local/x:v1")
    assert result.returncode == 1
    line = error_line(result)
    assert "library/tiny:latest" in line and "other/b:v2" in line, line
    ok(other("import", str(layout), "local/b:v2", "--ref", "v2"))
    assert other("show", "local/b:v2").stdout == registry.manifest("other/b", "v2")


def test_a_damaged_layout_is_refused_and_changes_nothing(registry, tmp_path, home):
    olreg = Olreg(tmp_path / "store", home)
    ok(olreg("pull", registry.name(TINY)))
    layout = tmp_path / "layout"
    ok(olreg("export", registry.name(TINY), str(layout)))
    biggest = max((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[-1] ^= 0xFF
    biggest.write_bytes(bytes(data))

    other = Olreg(tmp_path / "other", home)
    result = other("-q", "import", str(layout), "local/bad:v1")
    assert result.returncode == 1
    line = error_line(result)
    assert f"sha256:{biggest.name[:12]}" in line and "digest mismatch" in line, line
    assert not any((tmp_path / "other" / "blobs").iterdir())
    assert other("list").stdout == b""


def test_limit_rate_caps_a_pull(registry, tmp_path, home):
    """--limit-rate (or $OLREG_LIMIT_RATE) holds the whole pull to the cap;
    a bad value in the environment is an error naming the variable."""
    sizes = 1024 + 2048 + 300 * 1024  # the tiny model's layers
    least = (sizes - 200 * 1024 / 8) / (200 * 1024)  # an eighth of a second saved
    for store, args, env in [
        ("flag", ["--limit-rate", "200K"], {}),
        ("env", [], {"OLREG_LIMIT_RATE": "200k"}),
    ]:
        olreg = Olreg(tmp_path / store, home)
        started = time.monotonic()
        ok(olreg("-q", *args, "pull", registry.name(TINY), env=env))
        took = time.monotonic() - started
        assert took >= least, f"{store}: {took:.2f} s under a 200 KiB/s cap"

    olreg = Olreg(tmp_path / "bad", home)
    result = olreg("-q", "pull", registry.name(TINY), env={"OLREG_LIMIT_RATE": "fast"})
    assert result.returncode == 1
    line = error_line(result)
    assert "option rate_limit: " in line and "$OLREG_LIMIT_RATE" in line, line
    # The flag wins over the variable; 0 is no cap.
    ok(olreg("-q", "--limit-rate", "0", "pull", registry.name(TINY),
             env={"OLREG_LIMIT_RATE": "fast"}))
