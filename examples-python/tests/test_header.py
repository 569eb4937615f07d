"""The binding against the header it mirrors: ``include/olreg.h`` is parsed
here and every declared function's return and argument types, every
constant, the progress struct, the callback types and the version are
compared with the binding's ctypes declarations (``olreg/_abi.py``). Any
drift, a function the binding lacks or one the header no longer has fails.

Types are compared as the ABI sees them (kind and size: ``size_t`` and
``uint64_t`` are the same on LP64 Linux, as they are to ctypes).
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import olreg
from olreg import _abi, _errors

HEADER = Path(__file__).resolve().parents[2] / "include" / "olreg.h"


# --------------------------------------------------------------------------
# A parser for the C that cbindgen writes into olreg.h
# --------------------------------------------------------------------------

_SCALARS = {
    "void": "void",
    "bool": "bool",
    "char": "char",
    "int": f"i{8 * ctypes.sizeof(ctypes.c_int)}",
    "int32_t": "i32",
    "uint16_t": "u16",
    "uint32_t": "u32",
    "uint64_t": "u64",
    "size_t": f"u{8 * ctypes.sizeof(ctypes.c_size_t)}",
}


class Header(NamedTuple):
    defines: dict[str, str]  # OLREG_X -> value text
    functions: dict[str, tuple[str, list[str]]]  # name -> (return, [arguments])
    callbacks: dict[str, str]  # typedef name -> "fn(ret; args)"
    structs: dict[str, list[tuple[str, str]]]  # struct name -> [(field, type)]


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_header(text: str) -> Header:
    code = _strip_comments(text)
    defines = dict(re.findall(r"^#define (OLREG_\w+) (.+?)\s*$", code, flags=re.M))
    code = re.sub(r"^#.*$", " ", code, flags=re.M)
    code = code.replace('extern "C" {', " ")

    aliases: dict[str, str] = {}  # typedef name -> C type text
    opaque: set[str] = set()
    for struct, name in re.findall(r"typedef struct (\w+) (\w+);", code):
        assert struct == name, (struct, name)
        opaque.add(name)
    for target, name in re.findall(r"typedef ((?:\w+ )+?)(\w+);", code):
        if not target.startswith("struct "):
            aliases[name] = target.strip()

    structs_raw = dict(
        (name, body) for name, body, _ in
        re.findall(r"typedef struct (\w+) \{(.*?)\} (\w+);", code, flags=re.S)
    )
    callbacks_raw = dict(
        (name, (ret, args)) for ret, name, args in
        re.findall(r"typedef ([\w ]+?) \(\*(\w+)\)\(([^)]*)\);", code)
    )
    known = set(opaque) | set(structs_raw)

    def describe(decl: str, named: bool = True) -> str:
        """``const struct olreg_x **p`` -> ``struct olreg_x**`` (ABI view)."""
        tokens = re.findall(r"\w+|\*", decl)
        depth = tokens.count("*")
        words = [t for t in tokens if t not in ("*", "const", "struct")]
        if named and len(words) > 1:
            words = words[:-1]  # the parameter's name
        assert len(words) == 1, f"cannot read the C type {decl!r}"
        base = words[0]
        while base in aliases:
            base = aliases[base]
        if base in known:
            base = f"struct {base}"
        elif base in callbacks_raw:
            base = describe_callback(base)
        else:
            assert base in _SCALARS, f"unknown C type {base!r} in {decl!r}"
            base = _SCALARS[base]
        return base + "*" * depth

    def describe_args(args: str) -> list[str]:
        args = args.strip()
        if args in ("", "void"):
            return []
        return [describe(a) for a in args.split(",")]

    def describe_callback(name: str) -> str:
        ret, args = callbacks_raw[name]
        return f"fn({describe(ret, named=False)}; {', '.join(describe_args(args))})"

    structs = {
        name: [(field, describe(decl.strip()))
               for decl in body.split(";") if decl.strip()
               for field in [re.findall(r"\w+", decl)[-1]]]
        for name, body in structs_raw.items()
    }

    code = re.sub(r"typedef[^;{]*(\{[^}]*\})?[^;]*;", " ", code, flags=re.S)
    functions = {}
    for ret, name, args in re.findall(r"([\w \*]+?)\s*\b(olreg_\w+)\(([^)]*)\);", code):
        functions[name] = (describe(ret, named=False), describe_args(args))
    callbacks = {name: describe_callback(name) for name in callbacks_raw}
    return Header(defines, functions, callbacks, structs)


# --------------------------------------------------------------------------
# The same descriptions of ctypes types
# --------------------------------------------------------------------------


_FUNC_PTR: Any = getattr(ctypes, "_CFuncPtr")  # the base of every CFUNCTYPE type


def describe_ctype(t: Any) -> str:
    if t is None:
        return "void"
    if t is ctypes.c_char_p:
        return "char*"
    if t is ctypes.c_void_p:
        return "void*"
    if t is ctypes.c_bool:
        return "bool"
    if t is ctypes.c_char:
        return "char"
    if isinstance(t, type) and issubclass(t, ctypes._Pointer):  # POINTER(x)
        return describe_ctype(t._type_) + "*"
    if isinstance(t, type) and issubclass(t, _FUNC_PTR):  # CFUNCTYPE(...)
        args = ", ".join(describe_ctype(a) for a in getattr(t, "_argtypes_"))
        return f"fn({describe_ctype(getattr(t, '_restype_'))}; {args})"
    if isinstance(t, type) and issubclass(t, ctypes.Structure):
        return f"struct {t.__name__}"
    if isinstance(t, type) and issubclass(t, ctypes._SimpleCData):
        signed = t(-1).value == -1
        return f"{'i' if signed else 'u'}{8 * ctypes.sizeof(t)}"
    raise AssertionError(f"cannot describe the ctypes type {t!r}")


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def header() -> Header:
    if not HEADER.is_file():
        pytest.fail(f"the header {HEADER} is missing", pytrace=False)
    return parse_header(HEADER.read_text())


def test_the_parser_reads_the_whole_header(header: Header) -> None:
    # A parser that silently found nothing would make every test below pass.
    assert len(header.functions) >= 50
    assert header.functions["olreg_pull"] == (
        "i32",
        ["struct olreg_client*", "char*",
         "fn(i32; void*, struct olreg_progress*)", "void*",
         "struct olreg_cancel*", "struct olreg_manifest**", "struct olreg_error**"],
    )
    assert header.functions["olreg_version"] == ("char*", [])
    assert header.callbacks["olreg_log_cb"] == "fn(void; void*, i32, char*)"
    assert [f for f, _ in header.structs["olreg_progress"]][:3] == \
        ["struct_size", "event", "index"]


def test_every_function_has_the_headers_prototype(header: Header) -> None:
    missing = sorted(set(header.functions) - set(_abi.PROTOTYPES))
    extra = sorted(set(_abi.PROTOTYPES) - set(header.functions))
    drifted = []
    for name, (ret, args) in sorted(header.functions.items()):
        if name not in _abi.PROTOTYPES:
            continue
        restype, argtypes = _abi.PROTOTYPES[name]
        bound = (describe_ctype(restype), [describe_ctype(a) for a in argtypes])
        if bound != (ret, args):
            drifted.append(f"{name}: olreg.h has {ret}({', '.join(args)}), "
                           f"the binding {bound[0]}({', '.join(bound[1])})")
    problems = drifted
    if missing:
        problems.append(f"olreg.h declares functions the binding lacks: {missing}")
    if extra:
        problems.append(f"the binding declares functions olreg.h does not have: {extra}")
    assert not problems, "the binding's prototypes differ from olreg.h:\n" + "\n".join(problems)


def test_callback_types_match(header: Header) -> None:
    assert describe_ctype(_abi.PROGRESS_CB) == header.callbacks["olreg_progress_cb"]
    assert describe_ctype(_abi.LOG_CB) == header.callbacks["olreg_log_cb"]


def test_progress_struct_matches(header: Header) -> None:
    bound = [(field[0], describe_ctype(field[1])) for field in _abi.olreg_progress._fields_]
    assert bound == header.structs["olreg_progress"]


def _constants(header: Header, prefix: str, exclude: tuple[str, ...] = ()) -> dict[str, int]:
    return {
        name[len(prefix):]: int(value)
        for name, value in header.defines.items()
        if name.startswith(prefix) and not name[len(prefix):].startswith(exclude)
    }


def test_statuses_events_and_log_levels_match(header: Header) -> None:
    statuses = _constants(header, "OLREG_", ("EVENT_", "LOG_", "VERSION"))
    assert {s.name: s.value for s in olreg.Status} == statuses
    assert {e.name: e.value for e in olreg.Event} == _constants(header, "OLREG_EVENT_")
    assert {lv.name: lv.value for lv in olreg.LogLevel} == _constants(header, "OLREG_LOG_")


def _library_statuses() -> dict[str, int]:
    """Every status the library knows: its C name for each number from 0 up
    to the first it does not know (olreg_status_name's contract)."""
    statuses: dict[str, int] = {}
    for code in range(1000):
        name = olreg.status_name(code)
        if name is None:
            return statuses
        statuses[name] = code
    raise AssertionError("olreg_status_name never returned NULL")


def test_the_status_list_is_the_librarys() -> None:
    # The binding's one list of statuses (checked against olreg.h above) is
    # also exactly the library's: same names, same numbers, none missing.
    assert _library_statuses() == {f"OLREG_{s.name}": s.value for s in olreg.Status}
    assert olreg.status_name(olreg.Status.INTERNAL) == "OLREG_INTERNAL"
    assert olreg.status_name(-1) is None
    assert olreg.status_name(max(olreg.Status) + 1) is None


def test_every_failure_status_has_its_exception_and_the_librarys_text() -> None:
    lib = olreg._loader.library()
    classes = set()
    for name, code in _library_statuses().items():
        text = olreg.status_str(code)
        assert text and text != "unknown status", name
        if code == olreg.Status.OK:
            continue
        # The class is found by the library's name of the status.
        error = _errors.take_error(lib, code, None)
        status = olreg.Status[name[len("OLREG_"):]]
        assert type(error) is _errors.OlregError.by_status_name[status.name], name
        assert error.status is status and error.message == text
        assert f"[{status.name}]" in str(error)
        classes.add(type(error))
    # One class per failure status, each exported by the package.
    assert len(classes) == len(olreg.Status) - 1
    assert all(getattr(olreg, cls.__name__) is cls for cls in classes)
    assert issubclass(olreg.Panic, olreg.InternalError)
    assert type(_errors.take_error(lib, olreg.Status.INTERNAL, None)) is olreg.InternalError
    assert type(_errors.take_error(lib, olreg.Status.PANIC, None)) is olreg.Panic
    past_the_end = max(olreg.Status) + 1
    assert olreg.status_str(past_the_end) == "unknown status"
    unknown = _errors.take_error(lib, past_the_end, None)
    assert type(unknown) is _errors.OlregError and unknown.status == past_the_end


def test_versions_match_the_header(header: Header) -> None:
    major = int(header.defines["OLREG_VERSION_MAJOR"])
    minor = int(header.defines["OLREG_VERSION_MINOR"])
    assert olreg.ABI_VERSION == (major, minor)
    assert f'"{olreg.__version__}"' == header.defines["OLREG_VERSION"]
