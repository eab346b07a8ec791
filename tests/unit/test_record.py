"""vrrpfw.record: each record behaves as the dataclass it stands for.

Every record class of vrrpfw is compared with a dataclass twin made from
the same fields (``dataclasses.dataclass`` itself): constructor, errors,
repr, equality, hash, ``__dict__``, replace, asdict and frozenness, on
values chosen per field.  Then the parts of the module that no vrrpfw
class exercises today (post_init, init=False, refusals) are held on small
classes of the test's own, each against its dataclass too.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import importlib
import importlib.util
import os
import pickle
import pkgutil
import subprocess
import sys
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import pytest

import vrrpfw
from vrrpfw import record as rec
from vrrpfw.record import asdict, field, fields, record, replace

SKIP_MODULES = ("vrrpfw.__main__", "vrrpfw.cli.__main__")


def _all_records() -> List[type]:
    found: Dict[str, type] = {}
    for m in pkgutil.walk_packages(vrrpfw.__path__, "vrrpfw."):
        if m.name in SKIP_MODULES:
            continue
        mod = importlib.import_module(m.name)
        for value in vars(mod).values():
            if isinstance(value, type) and rec.SPEC in value.__dict__ and value.__module__ == m.name:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


RECORDS = _all_records()


def twin(cls: type) -> type:
    """The dataclass made from ``cls``'s fields, with its name, so reprs match."""
    spec = getattr(cls, rec.SPEC)
    ns: Dict[str, Any] = {"__annotations__": {f.name: Any for f in spec.fields},
                          "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    for f in spec.fields:
        kw: Dict[str, Any] = {"init": f.init, "repr": f.repr, "compare": f.compare}
        if f.default is not rec.MISSING:
            kw["default"] = f.default
        if f.default_factory is not rec.MISSING:
            kw["default_factory"] = f.default_factory
        ns[f.name] = dataclasses.field(**kw)
    if "__post_init__" in cls.__dict__:
        ns["__post_init__"] = cls.__dict__["__post_init__"]
    return dataclasses.dataclass(frozen=spec.frozen)(type(cls.__name__, (), ns))


class Box:
    """A value that is not atomic, so asdict must copy it."""

    def __init__(self, v: Any) -> None:
        self.v = v

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Box) and other.v == self.v

    __hash__ = None  # type: ignore[assignment]


def sample(cls: type, salt: int) -> Dict[str, Any]:
    """One value per __init__ parameter; values differ with ``salt``."""
    out: Dict[str, Any] = {}
    for i, f in enumerate(getattr(cls, rec.SPEC).fields):
        if f.init:
            out[f.name] = (f"{f.name}-{salt}", salt * 7 + i)
    return out


def both(cls: type, call) -> Tuple[Any, Any]:
    """``call`` on the record and on its twin: (result or exception type, ...)."""
    res = []
    for c in (cls, twin(cls)):
        try:
            res.append(call(c))
        except Exception as e:  # noqa: BLE001 - the type is what is compared
            res.append(type(e))
    return res[0], res[1]


def test_every_record_class_is_found():
    names = {c.__qualname__ for c in RECORDS}
    assert {"FwRule", "Packet", "VrrpRule", "Result", "HostScan", "Entry"} <= names
    assert len(RECORDS) >= 70


def _post_init_safe(cls: type) -> bool:
    """Classes whose __post_init__ checks its values: sample values are
    arbitrary, so only their errors can be compared."""
    return "__post_init__" not in cls.__dict__


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_record_class_behaves_as_its_dataclass(cls):
    tw = twin(cls)
    spec = getattr(cls, rec.SPEC)
    assert [f.name for f in fields(cls)] == [f.name for f in dataclasses.fields(tw)]
    for f in spec.fields:  # class attributes as dataclasses leaves them
        assert (f.name in cls.__dict__) == (f.name in tw.__dict__), f.name
        if f.name in cls.__dict__:
            assert cls.__dict__[f.name] is tw.__dict__[f.name], f.name
    a = sample(cls, 1)
    names = list(a)
    # keyword, positional, and defaults only
    for args, kwargs in ((), a), (tuple(a.values()), {}), ((), {}):
        r, t = both(cls, lambda c, args=args, kwargs=kwargs: c(*args, **kwargs))
        if isinstance(r, type) or isinstance(t, type):
            assert r == t, (args, kwargs)
            continue
        if not _post_init_safe(cls):
            continue
        assert repr(r) == repr(t)
        assert list(r.__dict__.items()) == list(t.__dict__.items())
        assert (r == copy.copy(r)) and not (r != copy.copy(r))
        if spec.frozen:
            assert hash(r) == hash(t)
            for name in names[:3]:
                with pytest.raises(dataclasses.FrozenInstanceError):
                    setattr(r, name, 1)
                with pytest.raises(dataclasses.FrozenInstanceError):
                    delattr(r, name)
            with pytest.raises(dataclasses.FrozenInstanceError):
                r.not_a_field = 1
        else:
            with pytest.raises(TypeError):
                hash(r)
            assert cls.__hash__ is None and tw.__hash__ is None
    if not _post_init_safe(cls):
        return
    # errors: too many positional, unknown keyword, given twice, missing
    assert both(cls, lambda c: c(*a.values(), 1)) == (TypeError, TypeError)
    assert both(cls, lambda c: c(**a, no_such_field=1)) == (TypeError, TypeError)
    if names:
        first = names[0]
        assert both(cls, lambda c: c(a[first], **{first: a[first]})) == (TypeError, TypeError)
    # equality per field, and replace
    x, y = cls(**a), tw(**a)
    assert x == cls(**a) and y == tw(**a)
    assert x != y and y != x  # different classes never compare equal
    b = sample(cls, 2)
    for name in names:
        changed = dict(a, **{name: b[name]})
        assert (x == cls(**changed)) == (y == tw(**changed)), name
        if spec.frozen:
            assert (hash(x) == hash(cls(**changed))) == (hash(y) == hash(tw(**changed))), name
        assert repr(replace(x, **{name: b[name]})) == repr(dataclasses.replace(y, **{name: b[name]}))
    assert asdict(x) == dataclasses.asdict(y)
    assert list(asdict(x)) == list(dataclasses.asdict(y))
    # and to dataclasses' own functions, a record looks like the dataclass
    assert dataclasses.is_dataclass(x) and dataclasses.is_dataclass(cls)
    seen = [(f.name, f.default, f.default_factory, f.init, f.repr, f.compare)
            for f in dataclasses.fields(x)]
    assert seen == [(f.name, f.default, f.default_factory, f.init, f.repr, f.compare)
                    for f in dataclasses.fields(y)]
    assert dataclasses.asdict(x) == dataclasses.asdict(y)
    if names:
        assert repr(dataclasses.replace(x, **{names[0]: b[names[0]]})) == repr(
            dataclasses.replace(y, **{names[0]: b[names[0]]}))
    # a dataclass may inherit from it (tests/ufwharness.py's namespace does)
    subs = [dataclasses.dataclass(frozen=spec.frozen)(type(
        "Sub", (base,), {"__annotations__": {"extra": "int"}, "extra": 7, "__module__": __name__}))
        for base in (cls, tw)]
    made = [sub(**a) for sub in subs]
    assert repr(made[0]) == repr(made[1]) and made[0].extra == 7
    assert made[0] == subs[0](**a) and list(made[0].__dict__) == list(made[1].__dict__)
    assert dataclasses.asdict(made[0]) == dataclasses.asdict(made[1])


# --- what no vrrpfw class exercises today, each held against its dataclass

def pair(body: Dict[str, Any], frozen: bool = False, name: str = "Probe") -> Tuple[type, type]:
    """The same class body as a record and as a dataclass."""
    def make(deco):
        ns = dict(body, __module__=__name__, __qualname__=name)
        ns["__annotations__"] = dict(body.get("__annotations__", {}))
        return deco(type(name, (), ns))
    return make(record(frozen=frozen)), make(dataclasses.dataclass(frozen=frozen))


def test_post_init_runs_in_init_and_in_replace():
    calls: List[Any] = []

    def post(self):
        calls.append(self.a)

    r, d = pair({"__annotations__": {"a": int}, "__post_init__": post})
    x, y = r(1), d(1)
    replace(x, a=2)
    dataclasses.replace(y, a=2)
    assert calls == [1, 1, 2, 2]


def test_init_false_fields():
    body = {"__annotations__": {"a": int, "b": int, "c": list, "d": int},
            "b": dataclasses.field(default=5, init=False),
            "c": dataclasses.field(default_factory=list, init=False),
            "d": dataclasses.field(init=False, repr=False)}
    rbody = dict(body, b=field(default=5, init=False), c=field(default_factory=list, init=False),
                 d=field(init=False, repr=False))
    r = record(type("Probe", (), dict(rbody, __module__=__name__, __qualname__="Probe",
                                      __annotations__=dict(body["__annotations__"]))))
    d = dataclasses.dataclass(type("Probe", (), dict(body, __module__=__name__, __qualname__="Probe",
                                                     __annotations__=dict(body["__annotations__"]))))
    x, y = r(1), d(1)
    # b reads its class attribute, d stays unset, c comes from its factory
    assert list(x.__dict__.items()) == list(y.__dict__.items()) == [("a", 1), ("c", [])]
    assert x.b == y.b == 5
    assert x.c is not r(1).c  # a fresh list each time
    with pytest.raises(TypeError):
        r(1, 2)
    with pytest.raises(TypeError):
        r(1, b=2)
    err = TypeError if sys.version_info >= (3, 13) else ValueError  # dataclasses changed in 3.13
    with pytest.raises(err, match="init=False"):
        replace(x, b=3)
    with pytest.raises(err, match="init=False"):
        dataclasses.replace(y, b=3)
    x.d = 9
    y.d = 9
    assert repr(replace(x, a=2)) == repr(dataclasses.replace(y, a=2))
    assert "d" not in replace(x, a=2).__dict__ and "d" not in dataclasses.replace(y, a=2).__dict__


def test_class_vars_are_not_fields():
    r, d = pair({"__annotations__": {"a": int, "k": "ClassVar[int]", "k2": ClassVar[int]}, "k": 3})
    assert [f.name for f in fields(r)] == ["a"] == [f.name for f in dataclasses.fields(d)]
    assert r(1).k == 3


def test_default_factory_is_fresh_each_time():
    r, _ = pair({"__annotations__": {"a": list}, "a": field(default_factory=list)})
    one, two = r(), r()
    one.a.append(1)
    assert two.a == [] and "a" not in r.__dict__


@pytest.mark.parametrize("body,err", [
    ({"__annotations__": {"a": int, "b": int}, "a": 1}, TypeError),  # non-default after default
    ({"__annotations__": {"a": list}, "a": []}, ValueError),  # a mutable default
    ({"__annotations__": {"a": "InitVar[int]"}}, TypeError),
    ({"__annotations__": {"a": int}, "__eq__": lambda s, o: True}, TypeError),
    ({"__annotations__": {"a": int}, "__repr__": lambda s: ""}, TypeError),
])
def test_what_a_record_does_not_do_is_refused(body, err):
    with pytest.raises(err):
        record(type("Probe", (), dict(body)))


def test_inheriting_fields_is_refused():
    base = record(type("Base", (), {"__annotations__": {"a": int}}))
    with pytest.raises(TypeError, match="inheriting"):
        record(type("Sub", (base,), {"__annotations__": {"b": int}}))
    with pytest.raises(TypeError, match="inheriting"):
        record(type("Sub", (dataclasses.dataclass(type("B", (), {"__annotations__": {"a": int}})),),
                    {"__annotations__": {"b": int}}))


def test_field_refuses_both_defaults():
    with pytest.raises(ValueError):
        field(default=1, default_factory=list)


def test_frozen_subclass_and_plain_attributes():
    r, d = pair({"__annotations__": {"a": int}}, frozen=True)
    sub_r = type("SubR", (r,), {})
    sub_d = type("SubD", (d,), {})
    for sub in (sub_r, sub_d):
        x = sub(1)
        x.extra = 2  # not a field, not the record's own class: allowed, as dataclasses allows
        assert x.extra == 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            x.a = 3


def test_asdict_recurses_and_copies_as_dataclasses_does():
    Point = collections.namedtuple("Point", "x y")
    ri, di = pair({"__annotations__": {"n": int}}, frozen=True, name="Inner")
    ro, do = pair({"__annotations__": {"inner": Any, "items": Any, "by": Any, "pt": Any, "box": Any,
                                       "tup": Any}}, name="Outer")

    def build(inner, outer):
        return outer(inner(1), [inner(2), 3], {"k": inner(4)}, Point(inner(5), 6), Box([7]),
                     (inner(8), "s"))

    x, y = build(ri, ro), build(di, do)
    got, want = asdict(x), dataclasses.asdict(y)
    assert got == want
    assert type(got["pt"]) is Point and got["box"] is not x.box and got["box"] == x.box
    with pytest.raises(TypeError):
        asdict(ro)
    with pytest.raises(TypeError):
        fields(object())
    with pytest.raises(TypeError):
        replace(ro, inner=1)


def test_pickle_and_copy_round_trip():
    from vrrpfw.judge.rules import Packet

    p = Packet(direction="in", interface="eth1", group="224.0.0.18", src="192.0.2.1")
    assert pickle.loads(pickle.dumps(p)) == p
    assert copy.copy(p) == p and copy.deepcopy(p) == p
    assert hash(copy.deepcopy(p)) == hash(p)


def test_optional_annotations_and_defaults_none():
    r, d = pair({"__annotations__": {"a": Optional[int], "b": "Optional[str]"}, "a": None, "b": None})
    assert repr(r()) == repr(d()) == "Probe(a=None, b=None)"


def test_the_check_path_imports_no_dataclasses():
    """Why vrrpfw.record exists: importing what ``check`` runs (every
    backend, the judge, the CLI's fast path) loads neither dataclasses nor
    inspect."""
    code = ("import sys, vrrpfw.api, vrrpfw.cli.fast, vrrpfw.cli.actions\n"
            "from vrrpfw.backends import registry\n"
            "import vrrpfw.judge.read.nft, vrrpfw.judge.read.legacy, vrrpfw.judge.nft\n"
            "import vrrpfw.backends.firewalld.layer, vrrpfw.backends.nftables, vrrpfw.backends.ufw\n"
            "print(sorted(m for m in ('dataclasses', 'inspect') if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(vrrpfw.__file__)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- found in review: each against its dataclass

def test_a_record_that_contains_itself_has_a_repr():
    r, d = pair({"__annotations__": {"a": Any}})
    x, y = r(None), d(None)
    x.a, y.a = x, y
    assert repr(x) == repr(y) == "Probe(a=...)"
    x.a, y.a = [x], [y]
    assert repr(x) == repr(y) == "Probe(a=[...])"
    assert repr(r(r(1))) == repr(d(d(1))) == "Probe(a=Probe(a=1))"  # nesting is no recursion


def test_match_args_are_the_init_parameters():
    r2 = record(type("Probe", (), {"__annotations__": {"a": int, "b": int},
                                   "b": field(default=0, init=False)}))
    d2 = dataclasses.dataclass(type("Probe", (), {"__annotations__": {"a": int, "b": int},
                                                  "b": dataclasses.field(default=0, init=False)}))
    assert r2.__match_args__ == ("a",)
    if sys.version_info >= (3, 10):  # dataclasses sets __match_args__ from 3.10 on
        assert r2.__match_args__ == d2.__match_args__


def test_a_field_without_annotation_is_refused():
    with pytest.raises(TypeError, match="no type annotation"):
        dataclasses.dataclass(type("Probe", (), {"__annotations__": {"a": int},
                                                 "b": dataclasses.field(default=1)}))
    with pytest.raises(TypeError, match="no type annotation"):
        record(type("Probe", (), {"__annotations__": {"a": int}, "b": field(default=1)}))


def test_fields_of_a_module_without_future_annotations():
    """Python 3.14 evaluates annotations lazily: a class body without
    ``from __future__ import annotations`` keeps no ``__annotations__`` in
    its ``__dict__`` (an ``__annotate_func__`` instead).  Fields must be
    found there too, forward references included (the code is compiled
    without this module's future import)."""
    src = ("class Probe:\n"
           "    a: int\n"
           "    b: 'NotDefinedAnywhere' = 1\n"
           "    c: ClassVar[int] = 3\n")
    made = []
    for deco in (record, dataclasses.dataclass):
        ns: Dict[str, Any] = {"ClassVar": ClassVar, "__name__": __name__}
        exec(compile(src, "<probe>", "exec", dont_inherit=True), ns)  # noqa: S102 - fixed source
        made.append(deco(ns["Probe"]))
    r, d = made
    assert [f.name for f in fields(r)] == [f.name for f in dataclasses.fields(d)] == ["a", "b"]
    assert repr(r(2)) == repr(d(2)) == "Probe(a=2, b=1)"


@pytest.mark.parametrize("given", [(), (1,), (1, 2)])
def test_missing_arguments_message_as_python_words_it(given):
    r, d = pair({"__annotations__": {"a": int, "b": int, "c": int}})
    messages = []
    for c in (r, d):
        with pytest.raises(TypeError) as e:
            c(*given)
        messages.append(str(e.value))
    if sys.version_info < (3, 10):  # 3.9 names no class: __init__() missing ...
        messages = [m.split("__init__()", 1)[1] for m in messages]
    assert messages[0] == messages[1]


# --- each vrrpfw record against the dataclass its own source makes

def _dataclass_twins() -> Dict[str, type]:
    """Every module that defines records, executed once more (as a module
    of its own) with ``vrrpfw.record``'s names bound to dataclasses'
    own: qualified class name -> the dataclass its class body makes.
    ``twin`` above builds its dataclass from the record's parsed fields, so
    it cannot see a field the parsing lost or invented (a ClassVar taken
    for a field, annotations not found); these twins can.  (Re-executing
    is harmless here: the only import-time effect is netns's atexit hook
    over its own empty lists.)"""
    real = {"record": dataclasses.dataclass, "field": dataclasses.field,
            "replace": dataclasses.replace, "asdict": dataclasses.asdict,
            "fields": dataclasses.fields}
    out: Dict[str, type] = {}
    for modname in sorted({c.__module__ for c in RECORDS}):
        spec = importlib.util.spec_from_file_location(modname + "_dataclass_twin",
                                                      sys.modules[modname].__file__)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        saved = {name: getattr(rec, name) for name in real}
        sys.modules[spec.name] = module  # dataclasses reads string annotations in it
        try:
            for name, value in real.items():
                setattr(rec, name, value)
            spec.loader.exec_module(module)
        finally:
            for name, value in saved.items():
                setattr(rec, name, value)
            del sys.modules[spec.name]
        for cls in RECORDS:
            if cls.__module__ == modname:
                found: Any = module
                for part in cls.__qualname__.split("."):
                    found = getattr(found, part)
                out[f"{modname}.{cls.__qualname__}"] = found
    return out


def _shown(value: Any) -> Any:
    if value is rec.MISSING or value is dataclasses.MISSING:
        return "MISSING"
    return getattr(value, "__qualname__", None) or repr(value)


def test_every_record_class_has_the_fields_its_source_gives_a_dataclass():
    twins = _dataclass_twins()
    for cls in RECORDS:
        key = f"{cls.__module__}.{cls.__qualname__}"
        dc = twins[key]
        assert dataclasses.is_dataclass(dc), key
        assert getattr(cls, rec.SPEC).frozen == dc.__dataclass_params__.frozen, key
        mine = [(f.name, f.init, f.repr, f.compare, _shown(f.default), _shown(f.default_factory))
                for f in fields(cls)]
        theirs = [(f.name, f.init, f.repr, f.compare, _shown(f.default), _shown(f.default_factory))
                  for f in dataclasses.fields(dc)]
        assert mine == theirs, key
        for f in fields(cls):  # class attributes as dataclasses leaves them
            assert (f.name in cls.__dict__) == (f.name in dc.__dict__), (key, f.name)
        assert ("__post_init__" in cls.__dict__) == hasattr(dc, "__post_init__"), key


@pytest.mark.parametrize("call", [
    lambda c: c(1, zz=1, a=2), lambda c: c(1, a=2, zz=1), lambda c: c(1, b=2, a=3),
    lambda c: c(1, 2, b=3), lambda c: c(b=2, c=3), lambda c: c(1, c=3),
])
def test_keyword_errors_as_python_gives_them(call):
    """The first bad keyword, in the caller's order, is the one named."""
    r, d = pair({"__annotations__": {"a": int, "b": int, "c": int}, "c": 0})
    results = []
    for cls in (r, d):
        try:
            results.append(repr(call(cls)))
        except TypeError as e:
            results.append(str(e).split("__init__()", 1)[1])  # 3.9 names no class
    assert results[0] == results[1]


def test_post_init_of_a_plain_base_class_runs():
    calls: List[str] = []

    class Checks:  # a mixin, not a record: dataclasses calls its __post_init__ too
        def __post_init__(self) -> None:
            calls.append(type(self).__name__)

    made = [deco(type(name, (Checks,), {"__annotations__": {"a": int}}))
            for name, deco in (("R", record), ("D", dataclasses.dataclass))]
    for cls in made:
        cls(1)
    assert calls == ["R", "D"]


def test_copy_replace_as_on_a_dataclass():
    """copy.replace (Python 3.13+) works on a record as on a dataclass;
    before 3.13 neither has ``__replace__``.  (Not a skip: CI forbids them.)"""
    r, d = pair({"__annotations__": {"a": int, "b": int}, "b": 0}, frozen=True)
    assert hasattr(r, "__replace__") == hasattr(d, "__replace__") == (sys.version_info >= (3, 13))
    if sys.version_info >= (3, 13):
        assert repr(copy.replace(r(1), b=2)) == repr(copy.replace(d(1), b=2)) == "Probe(a=1, b=2)"


def test_a_dataclasses_field_in_a_record_body_is_refused():
    with pytest.raises(TypeError, match="vrrpfw.record.field"):
        record(type("Probe", (), {"__annotations__": {"a": list},
                                  "a": dataclasses.field(default_factory=list)}))


def test_asdict_of_a_defaultdict_and_of_a_dataclass_inside_a_record():
    Inner = dataclasses.dataclass(type("Inner", (), {"__annotations__": {"n": int}}))
    r, _ = pair({"__annotations__": {"by": Any, "inner": Any}})
    by = collections.defaultdict(list, {"k": [1]})
    got = asdict(r(by, Inner(3)))
    assert type(got["by"]) is collections.defaultdict and got["by"] == {"k": [1]}
    assert got["by"].default_factory is list and got["by"]["k"] is not by["k"]
    assert got["inner"] == {"n": 3}
