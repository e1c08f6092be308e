"""Every event field a projection view reads exists on the event class that writes it.

Views read fields only through ``Event.fields(EventClass)`` or parameters annotated with an
event class (mypy checks both); this test reads the views' source the same way, so a field
renamed on an event fails here even where a check is skipped, and a view that reaches around
the typed access (``event.data``) fails too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.utils import resolve_topic

import projections.views
from projections.views import retention

VIEW_MODULES = [
    importlib.import_module(f"projections.views.{info.name}")
    for info in pkgutil.iter_modules(projections.views.__path__)
]


def event_classes(value: Any) -> list[type]:
    """The event classes a type expression names (a class or a union of classes)."""
    if isinstance(value, type) and hasattr(value, "TOPIC"):
        return [value]
    if typing.get_origin(value) in (typing.Union, types.UnionType):
        return [c for arg in typing.get_args(value) for c in event_classes(arg)]
    return []


def field_names(event_class: type) -> set[str]:
    return {name for klass in event_class.__mro__ for name in getattr(klass, "__annotations__", {})}


def is_dotted_name(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def typed_reads(module: types.ModuleType) -> Iterator[tuple[str, type, str, int]]:
    """(function, event class, field, line) for every typed field read in ``module``."""
    namespace = vars(module)

    def classes_of(node: ast.expr) -> list[type]:
        code = compile(ast.Expression(node), str(module.__file__), "eval")
        return event_classes(eval(code, namespace))

    def fields_call(node: ast.expr) -> list[type]:
        """``x.fields(EventClass)``: the classes it reads as."""
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "fields"
            and len(node.args) == 1
            and is_dotted_name(node.args[0])
        ):
            return classes_of(node.args[0])
        return []  # a class found at run time (retention's steps): tested on its own

    tree = ast.parse(inspect.getsource(module))
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        typed: dict[str, list[type]] = {}
        for arg in function.args.args:
            if arg.annotation is not None:
                typed[arg.arg] = classes_of(arg.annotation)
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and fields_call(node.value):
                    typed[target.id] = fields_call(node.value)
        for node in ast.walk(function):
            if not isinstance(node, ast.Attribute):
                continue
            if isinstance(node.value, ast.Name):
                read_as = typed.get(node.value.id, [])
            else:
                read_as = fields_call(node.value)
            for event_class in read_as:
                yield function.name, event_class, node.attr, node.lineno


def test_the_scan_finds_the_reads_of_every_view() -> None:
    """Guards the test itself: a view whose reads the scan missed would pass vacuously."""
    for module in VIEW_MODULES:
        assert list(typed_reads(module)), module.__name__


@pytest.mark.parametrize("module", VIEW_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_field_a_view_reads_is_declared_on_its_event_class(
    module: types.ModuleType,
) -> None:
    missing = [
        f"{module.__name__}:{line} {function} reads {cls.__name__}.{name}"
        for function, cls, name, line in typed_reads(module)
        if name not in field_names(cls)
    ]
    assert missing == []


@pytest.mark.parametrize("module", VIEW_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_no_view_reads_the_untyped_decoded_state(module: types.ModuleType) -> None:
    tree = ast.parse(inspect.getsource(module))
    untyped = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("data", "state")
    ]
    assert untyped == []


def test_each_retention_step_names_a_subject_field_its_event_declares() -> None:
    for topic, step in retention.STEPS.items():
        if step.subject_field is not None:
            assert step.subject_field in field_names(resolve_topic(topic)), topic
