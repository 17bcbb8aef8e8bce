"""The package's shape, read from the code: arrows point down (run layer → phases → spine), no import cycle —
lazy imports inside functions included —, and the four phase packages share their module names."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib"
PHASES = ("data", "translate", "train", "evaluate")
SHAPE = ("settings", "steps", "figures")


def _modules() -> dict[str, Path]:
    out = {}
    for f in (LIB / "mathcode").rglob("*.py"):
        parts = f.relative_to(LIB).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _edges() -> dict[str, set]:
    mods, edges = _modules(), {}
    for m, f in mods.items():
        pkg = m.split(".") if f.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = (".".join(pkg[:len(pkg) - node.level + 1] + ([node.module] if node.module else []))
                        if node.level else node.module or "")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in mods and t != m and not m.startswith(t + ".") and t != "mathcode":
                    edges.setdefault(m, set()).add(t)
    return edges


def _layer(m: str) -> tuple[int, str]:
    parts = m.split(".")
    if len(parts) > 1 and parts[1] in ("cli", "__main__"):
        return 3, "cli"
    if len(parts) > 1 and parts[1] == "run":
        return 2, "run"
    if len(parts) > 1 and parts[1] in PHASES:
        return 1, parts[1]
    return 0, "spine"


def test_no_import_cycle_not_even_a_lazy_one():
    edges = _edges()
    seen, on_stack, cycles = {}, [], []

    def visit(v):
        seen[v] = True
        on_stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w in on_stack:
                cycles.append(on_stack[on_stack.index(w):] + [w])
            elif w not in seen:
                visit(w)
        on_stack.pop()
    for v in sorted(_modules()):
        if v not in seen:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_arrows_point_down():
    bad = []
    for m, targets in _edges().items():
        lm, nm = _layer(m)
        for t in targets:
            lt, nt = _layer(t)
            if lt > lm or (lt == lm == 1 and nt != nm):
                bad.append(f"{m} ({nm}) imports {t} ({nt})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(sorted(bad))


@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_package_has_the_same_shape(phase):
    have = {f.stem for f in (LIB / "mathcode" / phase).glob("*.py")}
    assert set(SHAPE) <= have, f"mathcode.{phase} lacks {sorted(set(SHAPE) - have)}"


def test_each_phase_has_one_settings_class_that_the_run_layer_names():
    from mathcode.run import params
    from mathcode.settings import PhaseSettings
    for phase, cls in params.SETTINGS.items():
        assert issubclass(cls, PhaseSettings) and cls.PHASE == phase
        assert cls.__module__.split(".")[1] in PHASES and cls.__module__.endswith(".settings")
