"""The tests import ``olreg`` as users get it: an installed copy of the
package (``make test-python`` installs one into ``build/python`` and puts it on
``PYTHONPATH``), never the source tree; ``test_packaging.py`` checks that."""

import pytest

try:
    import olreg  # noqa: F401
except ImportError as e:
    pytest.exit(
        f"cannot import olreg ({e}): run `make test-python` at the repository root, or "
        "`pip install ./examples-python` into the environment that runs pytest",
        returncode=2,
    )
