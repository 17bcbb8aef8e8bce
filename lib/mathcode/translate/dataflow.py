"""Does a snippet *compute* what it prints, or was the answer typed in?

A translated snippet is worth training on only when its printed value comes out of an operation on the
conditions (``length * width``, ``math.sqrt(x)``, ``sum(...)``), not from a literal the model typed
(``print(84)``, ``price = 6.40; print(price)``, ``print(f"{84}")``, ``print(round(6.40, 2))``). Running
the code cannot tell the two apart, so we follow the data through the syntax tree instead:

* a literal (including ``-5``, containers of literals, ``math.pi``) is *typed in*;
* an arithmetic/comparison/boolean operation, or a call that does work (``math.sqrt``, ``sum``, a
  user-defined function whose return is computed), is *computed*;
* conversions and formatting (``int``, ``float``, ``str``, ``round``, ``Fraction``, ``Decimal``,
  ``"{}".format``, f-strings) pass on what their arguments are;
* a name is what was last assigned to it (branches and loop bodies can only make it computed);
  a name we cannot trace (loop variable over a call, a parameter, an unknown global) counts as computed,
  so that the check errs towards keeping real code.

The verdict is on the *last* ``print`` in the source (the line the output comparison reads).
"""
from __future__ import annotations

import ast

# calls that only convert or format their arguments: the result is as typed-in as the arguments are
PASS_THROUGH = {"int", "float", "str", "round", "abs", "repr", "format", "bool", "complex", "list", "tuple", "set",
                "dict", "Fraction", "Decimal", "Integer", "Rational", "Float", "S", "sympify", "nsimplify",
                "N", "evalf", "array", "asarray", "float64", "int64", "strip", "upper", "lower", "join"}
_UNKNOWN = object()


class _Flow:
    def __init__(self, tree: ast.Module):
        self.env: dict[str, bool] = {}
        self.imports: set[str] = set()
        self.functions: dict[str, ast.FunctionDef] = {}
        self.depth = 0
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for a in node.names:
                    self.imports.add((a.asname or a.name).split(".")[0])
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and hasattr(node, "name"):
                self.functions[node.name] = node

    # -- expressions ------------------------------------------------------------------------------------
    def computed(self, e: ast.AST | None) -> bool:
        if e is None or isinstance(e, ast.Constant):
            return False
        if isinstance(e, (ast.BinOp, ast.BoolOp, ast.Compare, ast.ListComp, ast.SetComp, ast.DictComp,
                          ast.GeneratorExp, ast.IfExp)):
            return True
        if isinstance(e, ast.UnaryOp):
            return not isinstance(e.operand, ast.Constant) and (isinstance(e.op, ast.Not) or self.computed(e.operand))
        if isinstance(e, ast.Name):
            if e.id in self.env:
                return self.env[e.id]
            return e.id not in self.imports                      # untraceable names count as computed
        if isinstance(e, ast.Attribute):                         # math.pi, obj.attr
            return self.computed(e.value)
        if isinstance(e, (ast.List, ast.Tuple, ast.Set)):
            return any(self.computed(x) for x in e.elts)
        if isinstance(e, ast.Dict):
            return any(self.computed(x) for x in e.values)
        if isinstance(e, ast.Subscript):
            return self.computed(e.value) or self.computed(e.slice)
        if isinstance(e, ast.JoinedStr):
            return any(self.computed(v) for v in e.values)
        if isinstance(e, ast.FormattedValue):
            return self.computed(e.value)
        if isinstance(e, ast.Starred):
            return self.computed(e.value)
        if isinstance(e, ast.Call):
            return self._call(e)
        return True                                              # lambdas, awaits, walrus ...: not a literal

    def _call(self, c: ast.Call) -> bool:
        args = list(c.args) + [k.value for k in c.keywords]
        f = c.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        receiver = f.value if isinstance(f, ast.Attribute) else None
        if name in PASS_THROUGH:
            return any(self.computed(a) for a in args) or (receiver is not None and self.computed(receiver)
                                                           and not (isinstance(receiver, ast.Name)
                                                                    and receiver.id in self.imports))
        if isinstance(f, ast.Name) and f.id in self.functions and self.depth < 5:
            return self._function_returns_computed(self.functions[f.id], args)
        return True

    def _function_returns_computed(self, fn, args) -> bool:
        saved = dict(self.env)
        self.depth += 1
        try:
            params = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
            for i, p in enumerate(params):
                self.env[p] = self.computed(args[i]) if i < len(args) else True
            self.block(fn.body, certain=True)
            rets = [n.value for n in ast.walk(fn) if isinstance(n, ast.Return)]
            return any(self.computed(r) for r in rets)
        finally:
            self.env = saved
            self.depth -= 1

    # -- statements -------------------------------------------------------------------------------------
    def _assign(self, target, value_computed: bool, certain: bool):
        for t in ast.walk(target):
            if isinstance(t, ast.Name):
                self.env[t.id] = value_computed if certain else (self.env.get(t.id, False) or value_computed)

    def block(self, stmts, certain: bool):
        for s in stmts:
            if isinstance(s, (ast.Assign, ast.AnnAssign)):
                targets = s.targets if isinstance(s, ast.Assign) else [s.target]
                for t in targets:
                    self._assign(t, self.computed(s.value), certain)
            elif isinstance(s, ast.AugAssign):
                self._assign(s.target, True, certain)
            elif isinstance(s, (ast.For, ast.AsyncFor)):
                self._assign(s.target, self.computed(s.iter), False)
                self.block(s.body, False)
                self.block(s.orelse, False)
            elif isinstance(s, (ast.If, ast.While)):
                self.block(s.body, False)
                self.block(s.orelse, False)
            elif isinstance(s, (ast.With, ast.AsyncWith)):
                self.block(s.body, certain)
            elif isinstance(s, ast.Try):
                for part in (s.body, *[h.body for h in s.handlers], s.orelse, s.finalbody):
                    self.block(part, False)


def _last_print(tree: ast.Module) -> ast.Call | None:
    prints = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and (
        (isinstance(n.func, ast.Name) and n.func.id == "print")
        or (isinstance(n.func, ast.Attribute) and n.func.attr == "write"))]
    return max(prints, key=lambda n: (n.lineno, n.col_offset)) if prints else None


def typed_in(code: str) -> tuple[bool, str]:
    """(True, why) when the snippet's last printed value is a literal typed into the code."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        return False, f"syntax error: {e.msg}"                 # execution reports it as an error
    p = _last_print(tree)
    if p is None:
        return False, "no print call"
    flow = _Flow(tree)
    # state at the print: walk the statements up to the print's line (loops/branches merged in)
    flow.block([s for s in tree.body if s.lineno <= p.lineno and not isinstance(s, (ast.FunctionDef,
                                                                                      ast.AsyncFunctionDef))],
               certain=True)
    enclosing = next((f for f in flow.functions.values()
                      if f.lineno <= p.lineno <= (f.end_lineno or f.lineno)), None)
    if enclosing is not None:                                   # the print is inside a function: params unknown
        for a in enclosing.args.posonlyargs + enclosing.args.args + enclosing.args.kwonlyargs:
            flow.env[a.arg] = True
        flow.block([s for s in enclosing.body if s.lineno <= p.lineno], certain=True)
    args = list(p.args) + [k.value for k in p.keywords if k.arg not in ("sep", "end", "file", "flush")]
    if any(flow.computed(a) for a in args):
        return False, ""
    line = ast.get_source_segment(code, p) or "print(...)"
    return True, f"printed value is typed in, not computed: {line[:120]}"
