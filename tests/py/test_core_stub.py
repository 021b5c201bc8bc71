"""meltemi/_core.pyi types the C extension: it names exactly what the module
exports, classes with their public members, and functions and methods with
the parameters the C side takes (as its signatures in the docstrings say)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from meltemi import _core

ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "meltemi" / "_core.pyi"


def stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text(), filename=str(STUB))


def public(names) -> set[str]:
    return {name for name in names if not name.startswith("_")}


def stub_names(body: list[ast.stmt]) -> dict[str, ast.AST]:
    names: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
    return names


STUBBED = stub_names(stub_tree().body)


def test_the_stub_names_every_public_name_of_the_module_and_no_other():
    assert public(STUBBED) == public(dir(_core))


@pytest.mark.parametrize("name", sorted(public(n for n, v in vars(_core).items() if isinstance(v, type))))
def test_classes_have_their_members_and_bases(name):
    cls = getattr(_core, name)
    node = STUBBED[name]
    assert isinstance(node, ast.ClassDef)
    assert [ast.unparse(base) for base in node.bases] == [b.__name__ for b in cls.__bases__ if b is not object]
    if issubclass(cls, BaseException):
        return
    assert public(stub_names(node.body)) == public(set(dir(cls)) - set(dir(object)))


def parameters(node: ast.FunctionDef) -> list[tuple[str, str | None]]:
    """(name, default as source) of a stubbed function, without self."""
    args = node.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + [ast.unparse(d) for d in args.defaults]
    found = list(zip([a.arg for a in positional], defaults, strict=True))
    found += [
        (a.arg, None if d is None else ast.unparse(d)) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    return [item for item in found if item[0] != "self"]


def runtime_parameters(obj) -> list[tuple[str, str | None]]:
    signature = inspect.signature(obj)
    found = []
    for p in signature.parameters.values():
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        found.append((p.name, default))
    return found


def callables():
    for name, node in STUBBED.items():
        if isinstance(node, ast.FunctionDef):
            yield name, getattr(_core, name), node
        elif isinstance(node, ast.ClassDef) and not issubclass(getattr(_core, name), BaseException):
            cls = getattr(_core, name)
            for member in node.body:
                if isinstance(member, ast.FunctionDef) and not member.decorator_list:
                    if member.name == "__init__":
                        yield name, cls, member
                    elif not member.name.startswith("__"):
                        yield f"{name}.{member.name}", getattr(cls, member.name), member


@pytest.mark.parametrize("name, obj, node", list(callables()), ids=lambda v: v if isinstance(v, str) else "")
def test_signatures_match(name, obj, node):
    stubbed = [(n, None if d is None else re.sub(r"'", '"', d)) for n, d in parameters(node)]
    actual = [(n, None if d is None else re.sub(r"'", '"', d)) for n, d in runtime_parameters(obj)]
    assert stubbed == actual


def test_the_stub_is_installed_with_the_package():
    """meson.build installs the whole meltemi directory (the stub and py.typed
    included): no Python file list to forget it in."""
    build = (ROOT / "meson.build").read_text()
    found = re.search(r"install_subdir\('meltemi',[^)]*\)", build)
    assert found, "meson.build no longer installs meltemi/ as a whole: list _core.pyi and py.typed"
    assert "exclude_files" not in found.group(0)
    assert (ROOT / "meltemi" / "py.typed").exists()
