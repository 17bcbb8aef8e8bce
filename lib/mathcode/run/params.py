"""The four phases' settings by name, for the run layer: recipes (``config``), ``validate``, ``params``, the
ablation and the plan read a phase's parameters here. The definitions live in each phase package's ``settings``
module; this module only names them.
"""
from __future__ import annotations

from pathlib import Path

from mathcode import paths
from mathcode.data.settings import DataSettings
from mathcode.evaluate.settings import EvaluationSettings
from mathcode.settings import PhaseSettings, SettingsError
from mathcode.train.settings import PretrainingSettings
from mathcode.translate.settings import TranslationSettings

SETTINGS: dict[str, type[PhaseSettings]] = {
    "data": DataSettings,
    "translation": TranslationSettings,
    "pretraining": PretrainingSettings,
    "evaluation": EvaluationSettings,
}
NOTEBOOKS = {phase: cls.NOTEBOOK for phase, cls in SETTINGS.items()}
# Parameters every notebook takes; the runner fills them from the recipe's top level.
COMMON = PhaseSettings.COMMON
ParameterError = SettingsError          # the name callers catch


def settings_class(phase: str) -> type[PhaseSettings]:
    if phase not in SETTINGS:
        raise ParameterError(f"unknown phase {phase!r}; known phases: {', '.join(SETTINGS)}")
    return SETTINGS[phase]


def notebook_path(phase: str) -> Path:
    return paths.project_root() / "notebooks" / settings_class(phase).NOTEBOOK


def defaults(phase: str) -> dict:
    """{name: default} of a phase's settings."""
    return settings_class(phase).defaults()


def docs(phase: str) -> dict:
    """{name: help text} (the comment after each name in the notebook's parameters cell)."""
    return settings_class(phase).docs()


def annotations(phase: str) -> dict:
    return settings_class(phase).annotations()


def coerce(phase: str, values: dict) -> dict:
    return settings_class(phase).coerce(values)


def check(phase: str, values: dict, *, where: str = "parameter", prefix: str = "", unknown_ok: bool = False) -> None:
    """Raise ParameterError naming the first unknown key, wrongly typed value or value outside its rule."""
    settings_class(phase).check(values, where=where, prefix=prefix, unknown_ok=unknown_ok)


def check_namespace(phase: str, namespace: dict) -> dict:
    """Validate the parameters found in ``namespace`` (as a notebook's first cell does); return them, coerced."""
    cls = settings_class(phase)
    values = cls.coerce({k: namespace[k] for k in cls.names() if k in namespace})
    cls.check(values)
    namespace.update(values)
    return values


def write_parameter_cells() -> list[Path]:
    """Rewrite each phase notebook's ``parameters`` cell from its settings class (after changing a setting)."""
    import nbformat
    out = []
    for phase, cls in SETTINGS.items():
        f = notebook_path(phase)
        nb = nbformat.read(f, as_version=4)
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        if len(cells) != 1:
            raise ParameterError(f"{f}: needs exactly one cell tagged 'parameters', found {len(cells)}")
        if cells[0].source != cls.parameters_cell():
            cells[0].source = cls.parameters_cell()
            nbformat.write(nb, f)
            out.append(f)
    return out
