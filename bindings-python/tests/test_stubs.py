"""The type stub of the native module, c2d/_native.pyi, names exactly what the module has,
with the same parameters: a stub that drifted from the code fails here."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import c2d
from c2d import _native

STUB = Path(c2d.__file__).with_name("_native.pyi")


def parameters(node: ast.FunctionDef) -> "list[str]":
    a = node.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    return [n for n in names if n not in ("self", "cls")]


def native_parameters(obj: object) -> "list[str]":
    sig = inspect.signature(obj)  # type: ignore[arg-type]
    return [n for n in sig.parameters if n not in ("self", "cls", "$self", "$cls")]


def test_the_stub_matches_the_native_module() -> None:
    tree = ast.parse(STUB.read_text())
    stub_names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            stub_names.add(node.name)
            assert native_parameters(getattr(_native, node.name)) == parameters(node), node.name
        elif isinstance(node, ast.ClassDef):
            stub_names.add(node.name)
            cls = getattr(_native, node.name)
            members = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
            native_members = {m for m in vars(cls) if not m.startswith("_")}
            assert set(members) - {"__init__"} == native_members, node.name
            for name, fn in members.items():
                is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list)
                attr = cls if name == "__init__" else inspect.getattr_static(cls, name)
                if is_property:
                    assert not callable(attr) or hasattr(attr, "__get__"), f"{node.name}.{name}"
                    continue
                target = cls if name == "__init__" else getattr(cls, name)
                assert native_parameters(target) == parameters(fn), f"{node.name}.{name}"
    public = {n for n in dir(_native) if not n.startswith("_")}
    assert public == stub_names
