"""The executed notebook as a reader should see it (the runner applies this before storing and rendering it).

* **One parameters cell.** papermill runs the notebook's parameters cell (the defaults) and then a second, injected
  cell with the recipe's values; read top to bottom, that is two conflicting parameter cells. Here the effective
  value replaces the default in the parameters cell itself, each changed line says so (``# set by the run; notebook
  default: 8``), and the injected cell is removed. What ran is unchanged: the executed values are exactly these.
* **Progress bars as their final state.** A text bar redraws itself with carriage returns; stored raw it shows every
  intermediate state (or, rendered to HTML, a frozen first one). Each stream keeps what a terminal would show.
"""
from __future__ import annotations

import ast

from mathcode.progress import collapse_carriage_returns


def _assignments(src: str) -> dict[str, ast.AST]:
    """Top-level ``name = value`` / ``name: T = value`` statements of a cell: name -> the statement."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return {}
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = node
    return out


def fold_parameters(param_src: str, injected_src: str) -> tuple[str, list[str]]:
    """The parameters cell with the injected values in place of the defaults; (new source, names changed)."""
    lines = param_src.split("\n")
    params = _assignments(param_src)
    injected = _assignments(injected_src)
    changed, extra = [], []
    # replace from the bottom up so earlier line numbers stay valid
    for name, node in sorted(params.items(), key=lambda kv: -kv[1].lineno):
        if name not in injected:
            continue
        new_val = ast.get_source_segment(injected_src, injected[name].value)
        old_val = ast.get_source_segment(param_src, node.value)
        if new_val is None or old_val is None:
            continue
        try:
            same = ast.literal_eval(new_val) == ast.literal_eval(old_val)
        except (ValueError, SyntaxError):
            same = new_val.strip() == old_val.strip()
        if same:
            continue
        v = node.value
        first, last = lines[v.lineno - 1], lines[v.end_lineno - 1]
        head, tail = first[:v.col_offset], last[v.end_col_offset:]
        default = old_val if len(old_val) <= 40 and "\n" not in old_val else "see the notebook"
        note = f"set by the run; notebook default: {default}"
        if "#" in tail and tail.lstrip().startswith("#"):
            i = tail.index("#")
            tail = tail[:i] + "# " + note + ";" + tail[i + 1:]
        else:
            tail = tail + "  # " + note
        lines[v.lineno - 1:v.end_lineno] = [head + new_val + tail]
        changed.append(name)
    for name, node in injected.items():
        if name not in params:
            seg = ast.get_source_segment(injected_src, node)
            if seg:
                extra.append(seg + "  # set by the run (not a notebook parameter)")
    if extra:
        lines += extra
    return "\n".join(lines), sorted(changed) + [ln.split("=")[0].strip() for ln in extra]


def tidy(nb):
    """Apply both rules to an nbformat notebook in place; returns it."""
    cells = nb.cells
    pi = next((i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    ii = next((i for i, c in enumerate(cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])), None)
    if pi is not None and ii is not None:
        src, changed = fold_parameters(cells[pi].source, cells[ii].source)
        cells[pi].source = src
        cells[pi].metadata.setdefault("mathcode", {})["folded_parameters"] = changed
        del cells[ii]
    for c in cells:
        if c.get("cell_type") != "code":
            continue
        merged = []                 # consecutive pieces of one stream first (a bar's redraws span messages) ...
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" \
                    and merged[-1].get("name") == o.get("name"):
                merged[-1]["text"] = merged[-1].get("text", "") + o.get("text", "")
                continue
            merged.append(o)
        outs = []
        for o in merged:            # ... then what a terminal would show of it
            if o.get("output_type") == "stream":
                o["text"] = collapse_carriage_returns(o.get("text", ""))
                if not o["text"].strip():
                    continue
            outs.append(o)
        c["outputs"] = outs
    return nb


def tidy_file(path) -> None:
    import nbformat
    nb = nbformat.read(str(path), as_version=4)
    nbformat.write(tidy(nb), str(path))
