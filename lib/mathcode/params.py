"""Notebook parameters are the schema: the ``parameters`` cell's defaults give each name and type.

Used twice: by the runner to validate a recipe before any work starts, and by each notebook right after
papermill injects values (so a bad ``-p`` to papermill fails in cell 2 with a one-line cause and remedy).
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from mathcode import paths

NOTEBOOKS = {
    "data": "01_data_sampling.ipynb",
    "translation": "02_translation.ipynb",
    "pretraining": "03_qlora_pretraining.ipynb",
    "evaluation": "04_evaluation.ipynb",
}
# Parameters every notebook takes; the runner fills them from the recipe's top level.
COMMON = ("run_dir", "model", "seed", "device")


class ParameterError(ValueError):
    """A parameter with the wrong name or type; the message names it and says how to fix it."""


def notebook_path(phase: str) -> Path:
    if phase not in NOTEBOOKS:
        raise ParameterError(f"unknown phase {phase!r}; known phases: {', '.join(NOTEBOOKS)}")
    return paths.project_root() / "notebooks" / NOTEBOOKS[phase]


@lru_cache(maxsize=None)
def _defaults_cached(nb_file: str, mtime: float) -> dict:
    import nbformat
    nb = nbformat.read(nb_file, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ParameterError(f"{nb_file} has no cell tagged 'parameters'")
    out, docs, types = {}, {}, {}
    tree = ast.parse(cells[0].source)
    lines = cells[0].source.splitlines()
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
            types[node.target.id] = ast.unparse(node.annotation)     # e.g. "str | list": a union is allowed
        if target is None:
            continue
        try:
            out[target] = ast.literal_eval(value)
        except ValueError as e:
            raise ParameterError(f"{nb_file}: default of {target!r} must be a literal") from e
        line = lines[node.lineno - 1]
        docs[target] = line.split("#", 1)[1].strip() if "#" in line else ""
    return {"defaults": out, "docs": docs, "types": types}


def defaults(phase: str) -> dict:
    """{name: default} from the phase notebook's parameters cell."""
    f = notebook_path(phase)
    return dict(_defaults_cached(str(f), f.stat().st_mtime)["defaults"])


def docs(phase: str) -> dict:
    """{name: the comment after it in the parameters cell}."""
    f = notebook_path(phase)
    return dict(_defaults_cached(str(f), f.stat().st_mtime)["docs"])


_ANNOTATED = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": (list, tuple), "dict": dict,
              "None": type(None)}


def annotations(phase: str) -> dict:
    """{name: annotation text} for parameters written ``name: TYPE = default``."""
    f = notebook_path(phase)
    return dict(_defaults_cached(str(f), f.stat().st_mtime)["types"])


def _annotation_ok(annotation: str, value) -> bool:
    import re
    kinds = [_ANNOTATED[w] for w in re.findall(r"\w+", annotation.strip("'\"")) if w in _ANNOTATED]
    if not kinds:
        return True
    if isinstance(value, bool) and bool not in kinds:
        return False
    return any(isinstance(value, k) for k in kinds)


def type_ok(default, value) -> bool:
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


def coerce(phase: str, values: dict) -> dict:
    """``values`` with number-like text turned into floats where the parameter is a float (YAML reads ``1e-4``
    as text); everything else unchanged."""
    from mathcode.param_rules import coerce_number_text
    d = defaults(phase)
    return {k: coerce_number_text(d.get(k), v) for k, v in values.items()}


def check(phase: str, values: dict, *, where: str = "parameter", prefix: str = "", unknown_ok: bool = False) -> None:
    """Raise ParameterError naming the first unknown key, wrongly typed value or value outside its rule
    (enum, range; see ``param_rules``)."""
    from mathcode import param_rules
    d, ann_all = defaults(phase), annotations(phase)
    for k, v in values.items():
        label = repr(prefix + k)
        if k not in d:
            if unknown_ok:
                continue
            near = [n for n in d if n.split("_")[0] == k.split("_")[0]][:3]
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise ParameterError(f"{where} {label} is not a parameter of {NOTEBOOKS[phase]}{hint}; "
                                 f"known: {', '.join(sorted(d))}")
        ann = ann_all.get(k)
        if ann is not None and not _annotation_ok(ann, v):
            raise ParameterError(f"{where} {label} of {NOTEBOOKS[phase]} must be {ann} (default {d[k]!r}), got "
                                 f"{_tname(v)} {v!r}; fix the value (recipe: phases.{phase}.{k})")
        if ann is None and not type_ok(d[k], v):
            raise ParameterError(f"{where} {label} of {NOTEBOOKS[phase]} must be {_tname(d[k])} "
                                 f"(default {d[k]!r}), got {_tname(v)} {v!r}; fix the value "
                                 f"(papermill: -p {k} <{_tname(d[k])}>, recipe: phases.{phase}.{k})"
                                 + (f"; for a number write it with a dot, e.g. 1.0e-4" if isinstance(d[k], float)
                                    and isinstance(v, str) else ""))
        try:
            param_rules.check(phase, k, v, label=f"{where} {label}")
        except param_rules.RuleError as e:
            raise ParameterError(str(e)) from None
    try:
        param_rules.check_together(phase, {**d, **values}, prefix=f"{where} {prefix}")
    except param_rules.RuleError as e:
        raise ParameterError(str(e)) from None


def check_namespace(phase: str, namespace: dict) -> dict:
    """Called inside a notebook with ``globals()``: validate every parameter's current value, return them."""
    d = defaults(phase)
    values = coerce(phase, {k: namespace[k] for k in d if k in namespace})
    check(phase, values, where="parameter")
    namespace.update(values)                       # papermill's "1e-4" text becomes the float it meant
    return values
