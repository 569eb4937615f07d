"""The package as users install it: ``pip install ./examples-python`` gives a
typed package that finds the library ``make install`` installed (through
pkg-config or the dynamic loader) and refuses a library of another ABI."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import olreg
from olreg import _abi

REPO = Path(__file__).resolve().parents[2]


def test_the_tests_run_against_the_installed_package() -> None:
    dist = importlib.metadata.distribution("olreg")
    assert dist.version == olreg.__version__
    files = {str(f) for f in dist.files or ()}
    assert {"olreg/__init__.py", "olreg/py.typed"} <= files, files
    installed = Path(str(dist.locate_file("olreg/__init__.py"))).resolve()
    assert Path(olreg.__file__).resolve() == installed
    assert REPO / "examples-python" not in installed.parents, \
        "the tests imported the source tree, not the installed package"


def test_public_names_belong_to_the_package() -> None:
    assert olreg.NotFound.__module__ == "olreg"
    assert repr(olreg.Status.NOT_FOUND) == "<Status.NOT_FOUND: 5>"
    assert olreg.Client.__module__ == "olreg"


def _run_installed(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` with the installed package and nothing else of the tests."""
    site = str(Path(olreg.__file__).resolve().parents[1])
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OLREG_LIB", "OLREG_LIB_DIR", "LD_LIBRARY_PATH", "PKG_CONFIG_PATH")}
    clean.update(env, PYTHONPATH=site)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=clean,
                          capture_output=True, text=True, timeout=120)


PRINT_LIBRARY = "import olreg; print(olreg.library_path()); print(olreg.version())"


@pytest.fixture(scope="module")
def installed_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make install PREFIX=<tmp>``: what a user's install holds."""
    prefix = tmp_path_factory.mktemp("prefix")
    out = subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "install",
                          f"PREFIX={prefix}"], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        pytest.fail(f"make install failed:\n{out.stdout}\n{out.stderr}", pytrace=False)
    return prefix


def test_finds_the_library_make_install_put_there_through_pkg_config(
    installed_prefix: Path, tmp_path: Path
) -> None:
    out = _run_installed(PRINT_LIBRARY, {
        "PKG_CONFIG_PATH": str(installed_prefix / "lib" / "pkgconfig"),
    }, tmp_path)
    assert out.returncode == 0, out.stderr
    path, version = out.stdout.split()
    assert path == str(installed_prefix / "lib" / _abi.soname())
    assert version == olreg.version()


def test_finds_the_library_through_the_dynamic_loader(
    installed_prefix: Path, tmp_path: Path
) -> None:
    # pkg-config finds nothing (an empty search path), the loader does.
    empty = tmp_path / "no-pc"
    empty.mkdir()
    out = _run_installed(PRINT_LIBRARY, {
        "PKG_CONFIG_LIBDIR": str(empty),
        "LD_LIBRARY_PATH": str(installed_prefix / "lib"),
    }, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == str(installed_prefix / "lib" / _abi.soname())


def test_olreg_lib_comes_first(installed_prefix: Path, tmp_path: Path) -> None:
    staged = REPO / "build" / "lib" / f"libolreg.so.{olreg.version()}"
    out = _run_installed(PRINT_LIBRARY, {
        "OLREG_LIB": str(staged),
        "PKG_CONFIG_PATH": str(installed_prefix / "lib" / "pkgconfig"),
    }, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == str(staged)


def test_the_soname_is_the_one_the_binding_looks_for() -> None:
    dynamic = subprocess.run(["readelf", "-d", olreg.library_path()], capture_output=True,
                             text=True, check=True).stdout
    assert f"Library soname: [{_abi.soname()}]" in dynamic


# A stand-in library whose olreg_version() says what the test wants.
SHIM = 'const char *olreg_version(void) { return SHIM_VERSION; }\n'


@pytest.mark.parametrize(("reported", "complaint"), [
    ("1.0.0", "is version 1.0.0, an incompatible ABI: these bindings were written for "
              f"olreg {_abi.ABI_VERSION[0]}.{_abi.ABI_VERSION[1]}.x ({_abi.soname()})"),
    (f"{_abi.ABI_VERSION[0]}.{_abi.ABI_VERSION[1] + 1}.0", "an incompatible ABI"),
    ("banana", "reports an odd version 'banana'"),
    # The right ABI passes the version check; then every function must be there.
    (f"{_abi.ABI_VERSION[0]}.{_abi.ABI_VERSION[1]}.99", "lacks olreg_cancel_new"),
])
def test_a_library_of_another_abi_is_refused(tmp_path: Path, reported: str,
                                             complaint: str) -> None:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.fail(f"no C compiler ({cc}) to build the stand-in library", pytrace=False)
    source = tmp_path / "shim.c"
    source.write_text(SHIM)
    shim = tmp_path / "libolreg-shim.so"
    subprocess.run([cc, "-shared", "-fPIC", f'-DSHIM_VERSION="{reported}"', str(source),
                    "-o", str(shim)], check=True, timeout=120)
    code = (
        "import olreg\n"
        "try:\n"
        "    olreg.Client()\n"
        "except olreg.LibraryNotFound as e:\n"
        "    print(e)\n"
    )
    out = _run_installed(code, {"OLREG_LIB": str(shim)}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert str(shim) in out.stdout and complaint in out.stdout, out.stdout
