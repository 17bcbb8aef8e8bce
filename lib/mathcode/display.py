"""Tables as a reader should see them in a notebook.

``table(df, empty=..., code=[...])``: left-aligned cells, long text wrapped rather than cut, code columns in a
monospace font with their line breaks, no index column; an empty table becomes the sentence ``empty`` instead of a
header with no rows (which reads like a fault). Returns something IPython displays (a pandas Styler or Markdown).
"""
from __future__ import annotations


def table(df, empty: str = "(no rows)", code=(), precision: int = 3):
    import pandas as pd
    from IPython.display import Markdown
    if df is None or len(df) == 0:
        return Markdown(f"*{empty}*")
    if not isinstance(df, pd.DataFrame):
        return df
    if df.index.name is not None or isinstance(df.index, pd.MultiIndex):
        df = df.reset_index()          # a meaningful index (a pivot's rows) becomes a column, never hidden
    elif not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index(drop=True)  # row numbers left over from sorting or filtering mean nothing to a reader
    sty = df.style.hide(axis="index").format(lambda v: _number(v, precision), na_rep="")
    sty = sty.set_properties(**{"text-align": "left", "white-space": "pre-wrap", "vertical-align": "top"})
    sty = sty.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    cols = [c for c in code if c in df.columns]
    if cols:
        sty = sty.set_properties(subset=cols, **{"font-family": "monospace", "font-size": "0.9em",
                                                  "min-width": "22em"})
    return sty


def show(*objs, empty: str = "(no rows)"):
    """Display each object; DataFrames through ``table``."""
    import pandas as pd
    from IPython.display import display
    for o in objs:
        display(table(o, empty=empty) if isinstance(o, pd.DataFrame) else o)


def _number(v, precision: int = 3) -> str:
    """Whole numbers without decimals (counts stored as floats read "91", not "91.000"), others to ``precision``
    significant digits; text unchanged."""
    import math
    if isinstance(v, bool) or not isinstance(v, (int, float)) and type(v).__module__ != "numpy":
        return str(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f):
        return ""
    if f.is_integer() and abs(f) < 1e15:
        return f"{int(f):,}" if abs(f) >= 10000 else str(int(f))
    return f"{f:.{max(precision, 1) + 1}g}"
