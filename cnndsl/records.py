"""`@record`: a dataclass whose methods are shared functions instead of generated code.

`@dataclass(frozen=True)` writes the source of `__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__` and
`__delattr__` for each class and compiles it: about a millisecond a class, paid by every process at import.
The modules `cnndsl check` imports declare some sixty such classes (the AST alone has thirty), which was a
quarter of the command's time on a 2-core machine. `record` asks `dataclasses` only for the fields (so
`dataclasses.fields`, `asdict`, `replace`, `is_dataclass` and `__match_args__` work as before) and gives the
class ready-made methods that read those fields:

    @record                   # as @dataclass(frozen=True): equal and hashable by value, read-only
    class Num:
        value: int | float
        span: Span

    @record(frozen=False)     # as @dataclass: equal by value, writable, unhashable

Defaults and `field(default_factory=...)` are supported; `field(init=False, repr=False, compare=False)` and
`__post_init__` are not (a dataclass is the tool for those: asking for them raises TypeError at the class),
nor is `InitVar`. Methods a class defines itself are kept, as dataclasses keeps them. `__dataclass_params__`
says init=False, repr=False, eq=False, frozen=False: what was asked of `dataclasses`, not what the class does.
"""

from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from operator import itemgetter


def record(cls=None, /, *, frozen: bool = True):
    """Make `cls` a dataclass with shared methods; `frozen` as for dataclass (default True here)."""

    def wrap(cls):
        return _record(cls, frozen)

    return wrap if cls is None else wrap(cls)


def _record(cls, frozen: bool):
    if "__post_init__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: @record has no __post_init__; use @dataclass")
    if cls.__doc__ is None:  # what dataclass would write, without its inspect.signature
        cls.__doc__ = f"{cls.__name__}({', '.join(cls.__dict__.get('__annotations__', {}))})"
    cls = dataclass(init=False, repr=False, eq=False)(cls)  # fields only: no code is generated
    fs = fields(cls)
    for f in fs:
        if not (f.init and f.repr and f.compare and f.hash is None):
            raise TypeError(f"{cls.__name__}.{f.name}: @record takes plain fields; use @dataclass")
    names = tuple(f.name for f in fs)
    nameset, count = set(names), len(names)
    defaults = {f.name: f.default for f in fs if f.default is not MISSING}
    factories = {f.name: f.default_factory for f in fs if f.default_factory is not MISSING}

    tail = []  # the defaults of the last fields, where they are plain values: `Weight(s, shape, init)`
    for f in reversed(fs):
        if f.default is MISSING:
            break
        tail.insert(0, f.default)
    tail, first = tuple(tail), count - len(tail)
    by_name = itemgetter(*names) if count > 1 else None  # every field by keyword: `LayerRow(name=..., ...)`

    def __init__(self, *args, **kwargs):
        if kwargs or len(args) != count:  # the common cases without a loop in Python, then the general one
            if not kwargs and first <= len(args) < count:
                args += tail[len(args) - first:]
            elif not args and len(kwargs) == count and by_name is not None and kwargs.keys() == nameset:
                args = by_name(kwargs)
            else:
                args = _bind(cls.__name__, names, defaults, factories, args, kwargs)
        self.__dict__.update(zip(names, args, strict=True))  # the instance dict, past a frozen __setattr__

    def __repr__(self):
        d = self.__dict__
        return f"{type(self).__qualname__}({', '.join(f'{k}={d[k]!r}' for k in names)})"

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        a, b = self.__dict__, other.__dict__
        return tuple(map(a.__getitem__, names)) == tuple(map(b.__getitem__, names))  # as dataclass: a tuple's ==

    def __hash__(self):
        return hash(tuple(map(self.__dict__.__getitem__, names)))

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    methods = {"__init__": __init__, "__repr__": __repr__, "__eq__": __eq__}
    if frozen:
        methods.update(__hash__=__hash__, __setattr__=__setattr__, __delattr__=__delattr__)
    for name, fn in methods.items():
        if cls.__dict__.get(name) is None:  # what the class defines stays (as dataclass)
            fn.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, fn)
    if not frozen and cls.__dict__.get("__hash__") is None:
        cls.__hash__ = None  # equal by value and mutable: unhashable, as a dataclass
    return cls


def _bind(name: str, names: tuple[str, ...], defaults: dict, factories: dict, args: tuple, kwargs: dict) -> list:
    """The field values in order, from positional and keyword arguments and the defaults; TypeError as a
    function call would raise it."""
    if not args and kwargs.keys() <= set(names):  # some fields by keyword, the rest from their defaults
        try:
            return [kwargs[k] if k in kwargs else defaults[k] if k in defaults else factories[k]() for k in names]
        except KeyError:
            pass  # a required field is missing: said below
    if len(args) > len(names):
        raise TypeError(f"{name}() takes {len(names)} positional arguments but {len(args)} were given")
    values = list(args)
    for k in names[len(args):]:
        if k in kwargs:
            values.append(kwargs.pop(k))
        elif k in defaults:
            values.append(defaults[k])
        elif k in factories:
            values.append(factories[k]())
        else:
            raise TypeError(f"{name}() missing required argument: {k!r}")
    for k in kwargs:
        raise TypeError(f"{name}() got {'multiple values for' if k in names else 'an unexpected keyword'} "
                        f"argument {k!r}")
    return values
