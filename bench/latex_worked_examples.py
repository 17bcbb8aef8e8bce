"""Build a JSONL corpus of worked examples (statement + solution) from the LaTeX source of an open textbook.

Two layouts are read, the two that open textbooks on GitHub commonly use:

* ``apex``: a macro ``\\example{label}{title}{statement}{solution}`` (APEX Calculus);
* ``env``: ``\\begin{example}{title}{label} ... \\end{example}`` followed by ``\\begin{solution} ... \\end{solution}``
  (Lyryx's *A First Course in Linear Algebra*).

Each row is ``{"id", "text", "meta": {book, file, label, title}}`` with ``id`` = ``BOOK/FILE#label`` so a block in
phase 2 can be traced back to the book's own example. Comments (``%`` to end of line) are dropped; everything else is
kept as the book wrote it (macros, displays, ``align``), since that is what a LaTeX corpus gives the kit.

The corpus stays out of git: check a textbook out under a data folder and point this script at it::

    python bench/latex_worked_examples.py --layout apex --book apex-calculus \\
        --root /work/data/latex/APEXCalculus+APEXCalculus_Source/text --per-file 2 \\
        --out /work/data/latex/apex-calculus.jsonl

``--per-file N`` takes the first N examples of every file (a spread over the whole book at a bounded cost);
``--files GLOB`` narrows the files read.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def strip_comments(tex: str) -> str:
    """Drop ``%`` comments (an escaped ``\\%`` stays)."""
    return re.sub(r"(?<!\\)%[^\n]*", "", tex)


def braced(tex: str, i: int) -> tuple[str, int]:
    """The group starting at the ``{`` at or after ``i`` (whitespace skipped) and the index after its ``}``."""
    while i < len(tex) and tex[i] in " \t\r\n":
        i += 1
    if i >= len(tex) or tex[i] != "{":
        raise ValueError(f"expected '{{' at offset {i}")
    depth, j = 0, i
    while j < len(tex):
        c = tex[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return tex[i + 1:j], j + 1
        j += 1
    raise ValueError(f"unbalanced group from offset {i}")


def apex_examples(tex: str):
    """(label, title, statement, solution) of every ``\\example{}{}{}{}``."""
    for m in re.finditer(r"\\example\s*(?=\{)", tex):
        try:
            label, k = braced(tex, m.end())
            title, k = braced(tex, k)
            statement, k = braced(tex, k)
            solution, k = braced(tex, k)
        except ValueError:
            continue
        yield label.strip(), title.strip(), statement.strip(), solution.strip()


_ENV = re.compile(r"\\begin\{example\}(.*?)\\end\{example\}\s*\\begin\{solution\}(.*?)\\end\{solution\}", re.S)


def env_examples(tex: str):
    """(label, title, statement, solution) of every example environment followed by its solution."""
    for m in _ENV.finditer(tex):
        body = m.group(1)
        try:
            title, k = braced(body, 0)
            label, k = braced(body, k)
        except ValueError:
            title, label, k = "", "", 0
        yield label.strip(), title.strip(), body[k:].strip(), m.group(2).strip()


def build(root: Path, layout: str, book: str, per_file: int, files: str) -> list[dict]:
    reader = apex_examples if layout == "apex" else env_examples
    rows = []
    for f in sorted(root.glob(files)):
        tex = strip_comments(f.read_text(encoding="utf-8", errors="replace"))
        for n, (label, title, statement, solution) in enumerate(reader(tex)):
            if per_file and n >= per_file:
                break
            text = f"{statement}\n\n{solution}".strip()
            rows.append({"id": f"{book}/{f.stem}#{label or n}", "text": text,
                         "meta": {"book": book, "file": f.name, "label": label, "title": title}})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, type=Path, help="folder of the book's .tex files")
    ap.add_argument("--layout", choices=("apex", "env"), required=True)
    ap.add_argument("--book", required=True, help="short name used in the ids")
    ap.add_argument("--per-file", type=int, default=0, help="first N examples of each file (0: all)")
    ap.add_argument("--files", default="*.tex", help="glob of files under --root")
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args(argv)
    if not a.root.is_dir():
        print(f"--root {a.root} is not a folder; check the textbook out first", file=sys.stderr)
        return 2
    rows = build(a.root, a.layout, a.book, a.per_file, a.files)
    if not rows:
        print(f"no worked examples of layout {a.layout!r} under {a.root}", file=sys.stderr)
        return 1
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} worked examples from {len({r['meta']['file'] for r in rows})} files -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
