"""`cnndsl.records.record` behaves as the dataclass it replaces, and `cnndsl check` generates no dataclass code."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import FrozenInstanceError, dataclass, field

import pytest
from conftest import ROOT, SPECS

from cnndsl.records import record


def _pair(frozen: bool):
    """The same class made by dataclass and by record."""

    def body():
        class Point:
            x: int
            y: float = 0.5
            tags: list = field(default_factory=list)

            def norm(self) -> float:
                return abs(self.x) + abs(self.y)

        return Point

    return dataclass(frozen=frozen)(body()), record(frozen=frozen)(body())


@pytest.mark.parametrize("frozen", [True, False])
def test_a_record_is_the_dataclass_it_replaces(frozen):
    dc, rc = _pair(frozen)
    nan = float("nan")
    calls = [((1,), {}), ((1, 2.0), {}), ((), {"x": 3}), ((1,), {"tags": (1,)}), ((1, nan, ()), {}),
             ((), {"tags": (), "x": 1, "y": 2.0}), ((1, 2.0), {"tags": ()})]
    for args, kwargs in calls:
        a, b = dc(*args, **kwargs), rc(*args, **kwargs)
        assert repr(a).replace(dc.__qualname__, "P") == repr(b).replace(rc.__qualname__, "P")
        assert str(dataclasses.asdict(a)) == str(dataclasses.asdict(b))
        assert (a == a, a == dc(*args, **kwargs)) == (b == b, b == rc(*args, **kwargs))  # nan: equal as a tuple's
        assert str(a.norm()) == str(b.norm())
        assert repr(dataclasses.replace(b, x=7)) == repr(rc(7, b.y, b.tags))
        assert (a.__hash__ is None) == (b.__hash__ is None) == (not frozen)
        if frozen and isinstance(b.tags, tuple):  # hashable when its fields are: by value, as a dataclass
            assert hash(b) == hash(rc(*args, **kwargs)) and len({b, rc(*args, **kwargs)}) == 1
    assert [f.name for f in dataclasses.fields(rc)] == ["x", "y", "tags"] and dataclasses.is_dataclass(rc)
    assert rc.__match_args__ == dc.__match_args__
    assert rc(1).tags == [] and rc(1).tags is not rc(1).tags  # a fresh default from the factory each time
    assert rc(1) != dc(1)  # another class is never equal, as with dataclasses
    for args, kwargs in [((), {}), ((1, 2, 3, 4), {}), ((1,), {"z": 1}), ((), {"x": 1, "y": 2, "z": 3}),
                         ((1,), {"x": 1}), ((), {"y": 1.0})]:
        for cls in (dc, rc):
            with pytest.raises(TypeError):
                cls(*args, **kwargs)
    b = rc(1)
    if frozen:
        with pytest.raises(FrozenInstanceError):
            b.x = 2
        with pytest.raises(FrozenInstanceError):
            del b.x
    else:
        b.x = 2
        assert b == rc(2)


def test_a_record_refuses_what_it_does_not_do():
    with pytest.raises(TypeError, match="plain fields"):
        @record
        class Hidden:
            x: int = field(default=0, compare=False)

    with pytest.raises(TypeError, match="__post_init__"):
        @record
        class Checked:
            x: int

            def __post_init__(self):
                pass


def test_methods_a_class_defines_stay():
    @record
    class Loud:
        x: int

        def __repr__(self) -> str:
            return "LOUD"

    assert repr(Loud(1)) == "LOUD" and Loud(1) == Loud(1) and hash(Loud(1)) == hash(Loud(1))


CHECK_AND_LIST = """
import inspect, sys
from cnndsl import cli
assert cli.main(["check", sys.argv[1]]) == 0
classes = [c for name, mod in list(sys.modules.items()) if name.startswith("cnndsl")
           for c in vars(mod).values() if inspect.isclass(c) and c.__module__ == name]
made = [c for c in classes if "__dataclass_params__" in vars(c)]
generated = [f"{c.__module__}.{c.__qualname__}" for c in made
             if any(getattr(c.__dataclass_params__, k) for k in ("init", "repr", "eq", "order", "frozen"))]
print(len(made), sorted(generated))
"""


def test_check_generates_no_dataclass_code():
    """Each @dataclass compiles generated methods (about 1 ms a class); the modules `check` imports use @record,
    which asks dataclasses for the fields only (no __init__, __repr__, __eq__ or frozen methods generated)."""
    p = subprocess.run([sys.executable, "-c", CHECK_AND_LIST, str(SPECS / "resnet50.cnn")], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    count, generated = p.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(count) >= 50, "expected the records of cnndsl.ast, .diagnostics, .layers, ... to be seen"
    assert generated == "[]", f"use cnndsl.records.record for these classes: {generated}"
