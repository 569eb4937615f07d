"""Usage errors exit 2 with the usage on stderr; --help and --version exit 0."""

import pytest


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bogus"],
        ["--bogus", "list"],
        ["-x", "list"],
        ["pull"],
        ["pull", "a", "b"],
        ["pull", "a", "--from", "b"],
        ["push"],
        ["push", "a", "--from"],
        ["push", "a", "--to", "b"],
        ["list", "extra"],
        ["list", "-q"],
        ["show"],
        ["rm"],
        ["rm", "a", "b"],
        ["prune", "now"],
        ["verify", "a", "b"],
        ["copy"],
        ["copy", "a"],
        ["copy", "a", "b", "c"],
        ["copy", "a", "b", "--ref", "x"],
        ["export", "a"],
        ["export", "a", "b", "--from", "c"],
        ["import", "a"],
        ["import", "a", "b", "--ref"],
        ["import", "a", "b", "c"],
        ["--limit-rate", "fast", "list"],
        ["--limit-rate", "5X", "list"],
        ["--limit-rate", "-1", "list"],
        ["--limit-rate", "1e9", "list"],
        ["--limit-rate=", "list"],
        ["--limit-rate"],
        ["--streams", "0", "list"],
        ["--streams", "abc", "list"],
        ["--streams", "-1", "list"],
        ["--streams", "4x", "list"],
        ["--streams", "1025", "list"],
        ["--streams=", "list"],
        ["--streams"],
        ["--models"],
        ["--mirror"],
    ],
    ids=lambda args: " ".join(args) or "(nothing)",
)
def test_usage_error(olreg, args, tmp_path):
    store = tmp_path / "untouched"
    result = olreg("--models", str(store), *args, models=False)
    assert result.returncode == 2
    assert result.stdout == b""
    err = result.stderr.decode()
    assert err.startswith("olreg: ")
    assert "usage: olreg" in err
    # Nothing was done: not even the store was created.
    assert not store.exists()


def test_help(olreg):
    result = olreg("--help", models=False)
    assert result.returncode == 0
    assert result.stdout.startswith(b"usage: olreg")
    for command in (b"pull NAME", b"push NAME [--from SRC]", b"list", b"show NAME",
                    b"rm NAME", b"prune", b"verify [NAME]", b"copy SRC DST",
                    b"export NAME DEST", b"import SRC NAME [--ref REF]", b"OLREG_MIRRORS"):
        assert command in result.stdout
    assert result.stderr == b""


def test_version(olreg):
    result = olreg("--version", models=False)
    assert result.returncode == 0
    assert result.stdout.decode().startswith("olreg ")
    assert result.stderr == b""


def test_options_take_both_spellings(olreg, registry, store):
    """`--opt VALUE` and `--opt=VALUE` are the same."""
    result = olreg(f"--models={store}", "--streams=2", "-q", "pull",
                   registry.name("other/b:v2"), models=False)
    assert result.returncode == 0, result.stderr
    assert (store / "manifests").is_dir()
