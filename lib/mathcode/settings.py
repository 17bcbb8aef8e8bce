"""Typed phase settings: one definition per phase that every reader of a parameter shares.

Each phase package has a ``settings.py`` with one frozen dataclass (``DataSettings``, ``TranslationSettings``,
``PretrainingSettings``, ``EvaluationSettings``). A field carries its default, its help text and its rule (allowed
values — read from the phase's registries —, a range, list members); cross-key rules live in the class's
``check_together``. Built once from a recipe block or a notebook namespace (``build``), before any work; every
refusal names the key and says what to write instead.

Who reads the definition: ``python -m mathcode validate/run/params`` (through ``mathcode.run.params``), the notebook's
first cell (``phase.start(SettingsClass, globals())``), the distributed phase-3 entry point, and the notebook's
``parameters`` cell itself, which is *written from* the class (``parameters_cell``; a test keeps them equal) so that
papermill still sees plain literals.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar


class SettingsError(ValueError):
    """A parameter with an unknown name, the wrong type or a value outside its rule; the message names it and
    says how to fix it."""


# --- rules ---------------------------------------------------------------------------------------------------
def _values(values) -> tuple:
    return tuple(values() if callable(values) else values)


@dataclass(frozen=True)
class Choice:
    """One of a set of values (a tuple, or a function returning one: read from a registry when checked)."""
    values: Any
    why: str = ""

    def check(self, key: str, v):
        vals = _values(self.values)
        if v not in vals:
            near = [x for x in vals if isinstance(x, str) and isinstance(v, str) and x[:2] == v[:2]]
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise SettingsError(f"{key}: {v!r} is not allowed{hint}; write one of {', '.join(map(repr, vals))}"
                                + (f" ({self.why})" if self.why else ""))

    def allowed(self) -> tuple:
        return _values(self.values)


@dataclass(frozen=True)
class Num:
    """A number in a range (``lo_open``/``hi_open``: the bound itself is excluded)."""
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    why: str = ""

    def check(self, key: str, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return                                            # types are checked before rules
        if isinstance(v, float) and not math.isfinite(v):
            raise SettingsError(f"{key}: {v!r} is not a finite number; write a number")
        bad = ((self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)))
               or (self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi))))
        if bad:
            lo = "" if self.lo is None else ("(" if self.lo_open else "[") + f"{self.lo:g}"
            hi = "" if self.hi is None else f"{self.hi:g}" + (")" if self.hi_open else "]")
            rng = f"in {lo or '(-inf'}, {hi or 'inf)'}"
            raise SettingsError(f"{key}: {v!r} is out of range; write a value {rng}"
                                + (f" — {self.why}" if self.why else ""))


@dataclass(frozen=True)
class Members:
    """A list whose items each come from a set (``nonempty``: at least one)."""
    values: Any
    nonempty: bool = False
    why: str = ""

    def check(self, key: str, v):
        if not isinstance(v, (list, tuple)):
            return
        vals = _values(self.values)
        if self.nonempty and not v:
            raise SettingsError(f"{key}: the list is empty; write at least one of {', '.join(map(repr, vals))}"
                                + (f" ({self.why})" if self.why else ""))
        bad = [x for x in v if x not in vals]
        if bad:
            raise SettingsError(f"{key}: {', '.join(map(repr, bad))} not allowed; write a list of "
                                f"{', '.join(map(repr, vals))}")

    def allowed(self) -> tuple:
        return _values(self.values)


@dataclass(frozen=True)
class NonEmpty:
    why: str = ""

    def check(self, key: str, v):
        if isinstance(v, (list, tuple, dict, str)) and not v:
            raise SettingsError(f"{key}: must not be empty — {self.why}")


@dataclass(frozen=True)
class Weights:
    """{name: number >= 0} (weights, or whole token budgets with ``integer``)."""
    integer: bool = False

    def check(self, key: str, v):
        if not isinstance(v, dict):
            return
        for k, x in v.items():
            ok = isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 and math.isfinite(x)
            if self.integer and ok:
                ok = float(x).is_integer()
            if not ok:
                what = "a whole number of tokens >= 0" if self.integer else "a number >= 0 (0 drops the source)"
                raise SettingsError(f"{key}.{k}: {x!r} is not allowed; write {what}")


FRACTION = Num(0, 1)
POS = Num(1)
NONNEG = Num(0)


# --- fields ----------------------------------------------------------------------------------------------------
def setting(default, help: str, rule=None, type: str | None = None):
    """A settings field: its default, one line of help (the notebook's comment), its rule and — only where the
    default's type is not the whole story — the allowed types as text (``"str | list"``)."""
    meta = {"help": help, "rule": rule, "type": type}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_ANNOTATED = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": (list, tuple), "dict": dict,
              "None": type(None)}
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _type_ok(default, value, annotation: str | None) -> bool:
    if annotation:
        kinds = [_ANNOTATED[w] for w in re.findall(r"\w+", annotation) if w in _ANNOTATED]
        if not kinds:
            return True
        if isinstance(value, bool) and bool not in kinds:
            return False
        return any(isinstance(value, k) for k in kinds)
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _tname(v) -> str:
    return "list" if isinstance(v, tuple) else type(v).__name__


def _literal(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    return repr(v)


# --- the base class ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseSettings:
    """Parameters every phase takes; the runner fills them from the recipe's top level."""
    PHASE: ClassVar[str] = ""
    NOTEBOOK: ClassVar[str] = ""
    COMMON: ClassVar[tuple] = ("run_dir", "model", "seed", "device")

    run_dir: str = setting("outputs/lab", "run folder (relative paths are taken from the project root)")
    model: str = setting("embedded:smollm2-135m-instruct", "model spec: embedded:NAME, a local folder or a Hub id")
    seed: int = setting(0, "random seed", NONNEG)
    device: str = setting("auto", "auto (CUDA when present, else CPU), cpu or cuda")

    # -- the definition ----------------------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in cls.fields()]

    @classmethod
    def defaults(cls) -> dict:
        out = {}
        for f in cls.fields():
            out[f.name] = f.default_factory() if f.default is dataclasses.MISSING else f.default
        return out

    @classmethod
    def docs(cls) -> dict:
        return {f.name: f.metadata.get("help", "") for f in cls.fields()}

    @classmethod
    def annotations(cls) -> dict:
        return {f.name: f.metadata["type"] for f in cls.fields() if f.metadata.get("type")}

    @classmethod
    def rule(cls, name: str):
        return {f.name: f.metadata.get("rule") for f in cls.fields()}.get(name)

    @classmethod
    def enumerated(cls) -> dict:
        """{name: allowed values} for every field whose values come from a set (the validation sweep's input)."""
        out = {}
        for f in cls.fields():
            r = f.metadata.get("rule")
            if isinstance(r, (Choice, Members)):
                out[f.name] = r.allowed()
        return out

    # -- checking ---------------------------------------------------------------------------------------------
    @classmethod
    def coerce(cls, values: dict) -> dict:
        """``values`` with number-like text turned into floats where the setting is a float (YAML 1.1 reads
        ``1e-4`` as text); everything else unchanged."""
        d = cls.defaults()
        out = {}
        for k, v in values.items():
            if isinstance(d.get(k), float) and isinstance(v, str) and _FLOAT_TEXT.match(v.strip()):
                v = float(v)
            out[k] = v
        return out

    @classmethod
    def check(cls, values: dict, *, where: str = "parameter", prefix: str = "", unknown_ok: bool = False) -> None:
        """Raise SettingsError naming the first unknown key, wrongly typed value, value outside its rule, or
        broken rule between keys."""
        d, ann = cls.defaults(), cls.annotations()
        nb = cls.NOTEBOOK or cls.__name__
        for k, v in values.items():
            label = repr(prefix + k)
            if k not in d:
                if unknown_ok:
                    continue
                near = [n for n in d if n.split("_")[0] == k.split("_")[0]][:3]
                hint = f" (did you mean {', '.join(near)}?)" if near else ""
                raise SettingsError(f"{where} {label} is not a parameter of {nb}{hint}; known: {', '.join(sorted(d))}")
            if not _type_ok(d[k], v, ann.get(k)):
                want = ann.get(k) or _tname(d[k])
                raise SettingsError(f"{where} {label} of {nb} must be {want} (default {d[k]!r}), got {_tname(v)} {v!r}; "
                                    f"fix the value (papermill: -p {k} <{want}>, recipe: phases.{cls.PHASE}.{k})"
                                    + ("; for a number write it with a dot, e.g. 1.0e-4"
                                       if isinstance(d[k], float) and isinstance(v, str) else ""))
            r = cls.rule(k)
            if r is not None:
                r.check(f"{where} {label}", v)
        cls.check_together({**d, **values}, prefix=f"{where} {prefix}")

    @classmethod
    def check_together(cls, values: dict, prefix: str = "") -> None:
        """Rules between keys of this phase (``values``: every setting, defaults filled). Subclasses add theirs."""

    @classmethod
    def build(cls, values: dict | None = None, *, where: str = "parameter", prefix: str = ""):
        """The checked settings object for ``values`` (missing keys take their defaults)."""
        vals = cls.coerce(dict(values or {}))
        cls.check(vals, where=where, prefix=prefix)
        return cls(**{**cls.defaults(), **vals})

    def as_dict(self) -> dict:
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in self.fields()}

    # -- the notebook's parameters cell ------------------------------------------------------------------------
    @classmethod
    def parameters_cell(cls) -> str:
        """The source of the notebook's ``parameters`` cell: one literal per setting with its help as comment."""
        lines = []
        for f in cls.fields():
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            ann = f.metadata.get("type")
            lhs = f"{f.name}: {_literal(ann)}" if ann else f.name
            lines.append(f"{lhs} = {_literal(default)}  # {f.metadata.get('help', '')}")
        return "\n".join(lines)

    @classmethod
    def from_namespace(cls, namespace: dict):
        """Inside a notebook (``globals()``): check every parameter's current value, write the coerced values back
        (papermill's ``"1e-4"`` text becomes the float it meant) and return the settings object."""
        names = cls.names()
        s = cls.build({k: namespace[k] for k in names if k in namespace})
        namespace.update({k: getattr(s, k) for k in names})
        return s
