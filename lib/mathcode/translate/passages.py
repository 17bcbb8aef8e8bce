"""Cut corpus documents into passages that contain computations, with the context their conditions need.

Math is LaTeX (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``, equation/align environments), a GSM8K-style
calculator mark ``<<a=b>>``, or plain arithmetic with a stated result (``3*4 = 12``,
``6 days/week * 2 weeks = 12 days``); a passage needs a *computation* among them — an operation whose result
the text states — because only those can be translated into code and checked. Passages are paragraph-aligned
so that the model sees whole sentences; each keeps up to ``context_chars`` of the text before it, because the
conditions of a computation are usually stated earlier.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, asdict

MATH_PATTERNS = {
    "latex_display": re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]", re.S),
    "latex_env": re.compile(r"\\begin\{(equation|align|gather|multline|eqnarray)\*?\}.+?\\end\{\1\*?\}", re.S),
    "latex_inline": re.compile(r"(?<![\\$])\$(?!\$)[^$\n]{1,400}?(?<!\\)\$|\\\(.+?\\\)", re.S),
    "calculator": re.compile(r"<<[^<>=]+=[^<>]+>>"),
    # number (op number)+ = number, units allowed between: "6 days/week * 2 weeks/month = 12 days/month"
    "arithmetic": re.compile(r"\d(?:[\d.,]*\d)?(?:\s*[a-zA-Z£$€%/]*\s*[-+*/×÷^x]\s*[£$€(]?\s*\d(?:[\d.,]*\d)?)+"
                             r"[^=\n,;()<>!]{0,20}=(?!=)\s*[£$€]?\s*-?\d"),
}


@dataclass
class Passage:
    id: str
    doc_id: str
    source: str
    text: str               # what the model is asked to translate (context + the math paragraphs)
    context: str            # the part of ``text`` that is only preceding context
    kinds: list[str] = field(default_factory=list)
    n_math: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def find_math(text: str) -> list[tuple[str, int, int]]:
    """Every computation-like span as (kind, start, end), overlapping spans removed (first kind wins)."""
    spans = []
    for kind, pat in MATH_PATTERNS.items():
        for m in pat.finditer(text):
            if not any(s <= m.start() < e or s < m.end() <= e for _, s, e in spans):
                spans.append((kind, m.start(), m.end()))
    return sorted(spans, key=lambda t: t[1])


_OPERATOR = re.compile(r"[-+*/^×÷·]|\\(?:times|cdot|div|frac|dfrac|tfrac|sqrt|binom|pi|ln|log|sin|cos|tan)\b|\bmod\b"
                       r"|\d\s*!|\d\s*e\b")
_LATEX_WORDS = re.compile(r"\\[a-zA-Z]+|\bmod\b|\\[{}]|(?<![A-Za-z])e(?![A-Za-z])")   # e: Euler's number
# a stated numeric result as books write it: ``32/3``, ``\\frac{32}{3}``, ``1.07 \\ \\text{units}^2``, ``12\\,\\mathrm{m}``
_SPACE = r"(?:\s|\\[ ,;:!]|~|\\quad)*"
_UNIT = r"(?:\\%|%|\\(?:text|mathrm|textrm|mbox|operatorname)\s*\{[^{}]*\}(?:\s*\^\s*\{?[23]\}?)?|\^\s*\{?\\circ\}?)"
_NUMBER = re.compile(_SPACE + r"\\?[$£€]?\s*-?(?:\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+(?![\d.]))?|\.\d+|\\[dt]?frac\{-?\d+\}\{\d+\})"
                     + _SPACE + r"(?:" + _UNIT + _SPACE + r")?[.,;]?\s*(?:\\[\])]|\\end\{\w+\*?\})?\s*")


def display_rows(body: str) -> str:
    """An ``align``/``eqnarray``/``gather`` body with its alignment marks out: ``&=&`` and ``&=`` become ``=``, other
    ``&`` and ``\\nonumber``/``\\label{…}``/``\\tag{…}`` go, so that each row continues the display's chain
    (``A &= \\frac{1}{2} \\cdot 4 \\cdot 3 \\\\ &= 6``: the stated result 6 of the row above)."""
    body = re.sub(r"\\begin\{(?:equation|align|gather|multline|eqnarray|aligned|split)\*?\}|"
                  r"\\end\{(?:equation|align|gather|multline|eqnarray|aligned|split)\*?\}", " ", body)
    body = re.sub(r"\\(?:nonumber|notag)\b|\\(?:label|tag)\{[^{}]*\}", " ", body)
    body = re.sub(r"&\s*=\s*&?|=\s*&", "=", body)
    body = re.sub(r"&\s*(\\approx)\s*&?", r"\1", body)
    return re.sub(r"(?<!\\)&", " ", body)


# a stated result that is an expression: what a derivative, an antiderivative, a limit, a simplification, a solution
# set or a matrix computation gives (the left side names the operation, the right side is the result)
_SYMBOLIC_OP = re.compile(
    r"\\frac\{\s*d(?:\^\{?\d\}?)?\s*[A-Za-z]?\s*\}\{\s*d\s*[A-Za-z]|\\frac\{\s*\\partial|\\[io]?int(?![A-Za-z])|\\lim(?![A-Za-z])|"
    r"\b[a-z]\s*(?:'|\^\{?\\prime\}?)+\s*\(|\\det(?![A-Za-z])|\\end\{[pbB]?matrix\}\s*(?:\\begin|\^)|"
    r"(?:\b[A-Z]|\\end\{[pbB]?matrix\})\s*\^\s*\{?\s*(?:-1|T)\s*\}?")
_MATRIX_RESULT = re.compile(r"=\s*(?:\\left\s*[(\[]\s*)?\\begin\{(?:[pbB]?matrix|array)\}")
_SOLUTIONS = re.compile(r"^\s*[A-Za-z]\s*=\s*[^=]*?(?:\\pm|\\text\s*\{\s*or\s*\}\s*[A-Za-z]\s*=)")
# a function the text names with a letter or a macro of its own (\theta(x), \delta(x), \Gamma(s), P(n)): defined
# by the text, not by sympy — the translator cannot compute with it
_APPLIED = re.compile(r"\\([A-Za-z]+)\s*\(|\b([A-Z])\s*\(")
_MATH_FUNCTIONS = frozenset("sin cos tan sec csc cot arcsin arccos arctan sinh cosh tanh ln log exp sqrt left right "
                            "cdot times div pm mp quad qquad big Big bigl bigr Bigl Bigr det lim int min max gcd".split())


def _text_function(body: str) -> bool:
    for m in _APPLIED.finditer(body):
        if m.group(2) or m.group(1) not in _MATH_FUNCTIONS:
            return True
    return False


# words that announce a rewrite (the only evidence that "a = b" with letters on both sides is a computation)
REWRITE_WORDS = re.compile(r"simplif|expand|factor|reduc|rewrit|cancel|combin|multiply(?:ing)? out", re.I)


def is_symbolic_computation(body: str, before_text: str = "") -> bool:
    """A display whose stated result is an expression (or a number) computed by an operation sympy has:
    ``\\frac{d}{dx}(x^3) = 3x^2``, ``\\int x^2\\,dx = \\frac{x^3}{3} + C``, ``\\lim_{x\\to 0} \\frac{\\sin x}{x} = 1``,
    ``f'(x) = 6x``, a product, inverse or determinant of written matrices, the roots ``x = \\frac{-1 \\pm
    \\sqrt{5}}{2}``, and a rewrite ``\\frac{x^2-1}{x-1} = x + 1`` when the text before it says so (``before_text``:
    "simplifying", "expanding", "factoring"). Not a definition (``f(x) = x^2``), an equation to solve, an identity
    stated as a fact, or a function the text names itself (``\\theta(x)``, ``P(n)``)."""
    sides = [x for x in re.split(r"(?<![<>!=\\])=(?!=)|\\approx", body) if x.strip()]
    if len(sides) < 2 or len(body) > 600:
        return False
    before, last = " = ".join(sides[:-1]), sides[-1]
    if not re.search(r"[A-Za-z0-9]", _LATEX_WORDS.sub(" ", last)) or _text_function(body):
        return False
    if re.search(r"'|\\prime", last) or (re.search(r"'|\\prime", before) and _NUMBER.fullmatch(last)):
        return False              # f'(x) = 0 is an equation to solve; f'(x) = 2q(x) + r'(x) is not an explicit result
    if _SYMBOLIC_OP.search(before) or _MATRIX_RESULT.search(body) and re.search(r"\\begin\{|\\det", before):
        return True
    if _SOLUTIONS.search(body) and re.search(r"\d", last):
        return True
    lettered = [bool(re.search(r"[A-Za-z]", _LATEX_WORDS.sub(" ", x))) for x in sides]
    return bool(REWRITE_WORDS.search(before_text[-80:])) and all(lettered) and bool(_OPERATOR.search(sides[0]))


def is_computation(kind: str, span: str) -> bool:
    """A span that *carries out* a calculation and states its numeric result: a calculator mark, plain
    arithmetic with ``= number``, or math with a side that is a number right after a side that is an operation
    on numbers only (``42\\cdot 56 = 2352``, ``19 mod 8 = 3``) — not a bare symbol (``$x$``), a definition
    (``$r = 2$``), an identity or an equation in unknowns (``x^2+2y^2 = 3``)."""
    if kind == "calculator":
        return True
    if kind == "arithmetic":        # not an equation in unknowns: "242 - 35*d = -1788", "51*h**3 - 78*h = 0"
        return not re.search(r"\d\s*[*/^]\s*[a-zA-Z]\b(?!\s+\d)|\b[a-zA-Z]\s*(?:\*\*|\^)", span)
    body = display_rows(re.sub(r"^\$+|\$+$|^\\[(\[]|\\[)\]]$", "", span.strip()))
    if is_symbolic_computation(body):
        return True
    sides = re.split(r"(?<![<>!=])=(?!=)|\\approx", body)
    for i in range(1, len(sides)):
        rows = [r for r in sides[i - 1].split("\\\\") if r.strip()]
        prev = rows[-1] if rows else ""                          # the row of an align, not the rows above
        if _NUMBER.fullmatch(re.sub(r"\\boxed\{(.*)\}", r"\1", sides[i])) and _OPERATOR.search(prev) and re.search(r"\d", prev) \
                and not re.search(r"[a-zA-Z]", _LATEX_WORDS.sub(" ", prev)):
            return True
    return False


_INSIDE_EXPRESSION = re.compile(r"(?:[*/^]\s*|[a-zA-Z_)])$")


def find_computations(text: str) -> list[tuple[str, int, int]]:
    """The spans of ``find_math`` that are computations with a stated result (``is_computation``).

    Plain arithmetic must start an expression: ``2 - 24 = 0`` inside ``128*k**2 - 24 = 0`` follows ``**`` and is
    the tail of an equation in ``k``, not a calculation."""
    return [(k, a, b) for k, a, b in find_math(text) if (is_computation(k, text[a:b]) or (
                k.startswith("latex") and is_symbolic_computation(_math_body(text[a:b]), text[max(0, a - 80):a])))
            and not (k == "arithmetic" and _INSIDE_EXPRESSION.search(text[max(0, a - 3):a]))]


def _math_body(span: str) -> str:
    return display_rows(re.sub(r"^\$+|\$+$|^\\[(\[]|\\[)\]]$", "", span.strip()))


UNITS = ("paragraph", "line")


def _paragraphs(text: str, unit: str = "paragraph") -> list[str]:
    if unit == "line":              # one step of a worked solution per unit: short statements translate best
        return [ln.strip() for ln in text.splitlines() if ln.strip()]
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(paras) == 1 and len(paras[0]) > 1500:               # one long block: fall back to lines
        paras = [p.strip() for p in paras[0].splitlines() if p.strip()]
    return paras


_SENTENCE_END = re.compile(r"[.!?;:](?=\s)|\n|\$\$|\\\]|\\end\{\w+\*?\}")


def cut_at_boundary(text: str, max_chars: int) -> str:
    """``text`` cut to about ``max_chars`` at the end of a sentence or of a display, never inside math and never
    before the end of its first computation's stated result (a line that runs past ``max_chars`` with its result
    at the end is kept whole up to the end of that sentence); ``…`` marks a cut."""
    if len(text) <= max_chars:
        return text
    math = find_math(text)
    comps = find_computations(text)
    need = 0
    if comps:
        k, a, b = comps[0]
        need = b + len(re.match(r"[\d.,]*(?:\s*/\s*\d+)?", text[b:]).group(0)) if k == "arithmetic" else b
    ends = [m.end() for m in _SENTENCE_END.finditer(text)
            if not any(s < m.start() < e - (2 if text[e - 2:e] in ("$$", "\\]") else 0) for _, s, e in math)]
    ends = [e for e in ends if e >= need] or [len(text)]
    fit = [e for e in ends if e <= max_chars]
    cut = max(fit) if fit else min(ends)
    return text if cut >= len(text.rstrip()) else text[:cut].rstrip() + " …"


def split_document(doc: dict, *, max_passage_chars: int = 1200, context_chars: int = 400,
                   max_passages: int = 4, min_math: int = 1, unit: str = "paragraph") -> list[Passage]:
    """Passages of one corpus row (``{"id", "text", "source"}``), in document order.

    A passage starts at a paragraph holding at least ``min_math`` computations with a stated result
    (``is_computation``): a paragraph that only mentions symbols gives the translator nothing to verify.
    ``unit="line"`` cuts at lines instead of paragraphs (with a small ``max_passage_chars``: one solution step per
    passage, the preceding lines as its context)."""
    text = doc.get("text") or ""
    if unit not in UNITS:
        raise ValueError(f"passage_unit={unit!r}; use one of {UNITS}")
    paras = _paragraphs(text, unit)
    out: list[Passage] = []
    i = 0
    while i < len(paras) and len(out) < max_passages:
        spans = find_math(paras[i])
        if len(find_computations(paras[i])) < min_math:
            i += 1
            continue
        # grow forward while the next paragraphs also carry math and the passage stays short
        body, kinds, n = [paras[i]], [k for k, _, _ in spans], len(spans)
        j = i + 1
        # a line passage is one step: a second computation in the same passage was what the 0.5B translator
        # mixed up (result of one, expression of the other) on the demo
        while unit != "line" and j < len(paras) and sum(map(len, body)) + len(paras[j]) <= max_passage_chars:
            more = find_math(paras[j])
            if not more:
                break
            body.append(paras[j])
            kinds += [k for k, _, _ in more]
            n += len(more)
            j += 1
        ctx_parts, room = [], context_chars
        for p in reversed(paras[max(0, i - 3):i]):                  # preceding paragraphs, nearest first
            if room <= 0:
                break
            ctx_parts.insert(0, p if len(p) <= room else "…" + p[-room:])
            room -= len(p)
        context = "\n\n".join(ctx_parts)
        body_text = cut_at_boundary("\n\n".join(body), max_passage_chars)
        full = (context + "\n\n" + body_text) if context else body_text
        out.append(Passage(id=f"{doc['id']}#p{len(out)}", doc_id=str(doc["id"]),
                           source=str(doc.get("source", "")), text=full, context=context,
                           kinds=sorted(set(kinds)), n_math=n))
        i = j
    return out


def split_corpus(docs, **kw) -> tuple[list[Passage], dict]:
    """Passages of every document, plus counts: documents, documents with passages, passages."""
    passages, with_p, n = [], 0, 0
    for d in docs:
        n += 1
        ps = split_document(d, **kw)
        with_p += bool(ps)
        passages.extend(ps)
    return passages, {"documents": n, "documents_with_passages": with_p, "passages": len(passages)}


# --- which passages the translator is likely to verify (passage_selection="translatable") ----------------
# The paper's translator writes conditions + expression + result + code for a computation, and a block enters the
# data only when the code prints the stated result (verify.py). A cheap look at the passage before any generation
# tells which computations a small translator gets through that check: one plain-number step ("Liam hides
# 4 x 12 = 48 eggs") verifies far more often than chained modular or power arithmetic in LaTeX
# ("$1^2+2*3^2 mod 8=19 mod 8=3$"), a repeating decimal retyped ("18 x 0.6666666666666666 = 12.0") or a stated
# result that the expression does not give. Hand-read evidence: tests/fixtures/verify_labelled.jsonl,
# bench/README.md ("Translation throughput", verification rate per score).
SELECTIONS = ("order", "translatable")
SCORE_FEATURES = ("plain_numbers", "basic_operators", "one_step", "short_numbers", "result_checks")

_LATEX_SUBS = ((r"\\(?:times|cdot)", "*"), (r"\\div", "/"), (r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))"),
               (r"\\left|\\right|\\!|\\,|\\;|\\ ", ""), (r"\{|\}", ""))
_ADVANCED = re.compile(r"\\(?:sqrt|binom|sum|prod|int|log|ln|sin|cos|tan|pmod|equiv)|\bmod\b|[\^!]|\*\*|∑|√|≡|\|")
_NUM = re.compile(r"\d[\d,]*(?:\.\d+)?|\.\d+")


def _computation_sides(kind: str, span: str) -> tuple[str, str, int] | None:
    """(expression, stated result, number of '=' signs) of one computation span, or None."""
    body = span.strip()
    if kind == "calculator":
        body = body[2:-2]
    body = re.sub(r"^\$+|\$+$|^\\[(\[]|\\[)\]]$", "", body)
    body = re.sub(r"\\boxed\{(.*)\}", r"\1", body)
    sides = re.split(r"(?<![<>!=])=(?!=)|\\approx|&=", body)
    for i in range(1, len(sides)):
        m = re.match(r"\s*[£$€]?\s*(-?(?:\d[\d,]*(?:\.\d+)?|\.\d+))", sides[i])
        if m and re.search(r"\d", sides[i - 1]) and not re.match(r"\s*(?:[-+*/×÷^]|\\times|\\cdot|x\s*\d)",
                                                                 sides[i][m.end():]):
            return sides[i - 1].strip(), m.group(1), len(sides) - 1
    return None


def _evaluate(expr: str) -> float | None:
    """The value of a numbers-only expression as a passage writes it (units, x/×/÷, LaTeX products and
    fractions allowed), or None when it is not one. Safe: only numbers and + - * / ( ) reach ``ast``."""
    import ast
    import operator
    e = expr
    for pat, rep in _LATEX_SUBS:
        e = re.sub(pat, rep, e)
    e = re.sub(r"(?:(?<=[\d)])|(?<=\s))[x×](?=\s*[\d(£$€])", "*", e).replace("÷", "/").replace("·", "*")
    e = re.sub(r"[£$€]", "", e)
    e = re.sub(r"(?<=\d),(?=\d{3}\b)", "", e)                       # 1,300 -> 1300
    e = re.sub(r"(?:/\s*)?[a-zA-Z][a-zA-Z'’]*(?:/[a-zA-Z]+)*", " ", e)  # units: "bananas", "days/week", "€11/ball"
    if not re.fullmatch(r"[\d.\s+\-*/()]+", e) or not re.search(r"\d\s*[-+*/]\s*[\d(.]|\)\s*[-+*/]", e):
        return None
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

    def ev(n):
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return float(n.value)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = ev(n.operand)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp) and type(n.op) in ops:
            return ops[type(n.op)](ev(n.left), ev(n.right))
        raise ValueError("not arithmetic")
    try:
        return ev(ast.parse(re.sub(r"\s+", " ", e).strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
        return None


SYMBOLIC_FEATURES = ("one_call", "one_step", "short_result", "standard_latex", "one_variable")
_ONE_CALL = re.compile(r"\\frac\{\s*d|\\frac\{\s*\\partial|\\[io]?int(?![A-Za-z])|\\lim(?![A-Za-z])|'|\\prime|\\det(?![A-Za-z])|"
                       r"\\begin\{|\^\s*\{?\s*(?:-1|T)\b|\\pm")
_STANDARD = ("frac", "dfrac", "tfrac", "sqrt", "cdot", "times", "div", "pi", "sin", "cos", "tan", "ln", "log", "exp",
             "left", "right", "int", "lim", "to", "infty", "pm", "mp", "begin", "end", "pmatrix", "bmatrix", "matrix",
             "det", "prime", "partial", "text", "mathrm", "quad", "approx", "le", "ge", "leq", "geq", "alpha", "beta",
             "theta", "lambda", "mu", "sigma", "omega", "phi", "cdots", "ldots", "sec", "csc", "cot", "arcsin",
             "arccos", "arctan", "sinh", "cosh", "tanh", "e", "displaystyle", "limits", "dx", "mathbf")


def symbolic_score(math: str, n_comps: int = 1) -> tuple[float, list[str]]:
    """The score of a computation whose result is an expression (``is_symbolic_computation``): the share of
    ``SYMBOLIC_FEATURES`` it has.

      one_call        the left side is an operation sympy does in one call (diff, integrate, limit, det, inverse,
                      a matrix product, the roots) — a chain of rewrites asks the translator to find the operation
      one_step        one computation in the passage body, stated with one '=' (or one chain ending in it)
      short_result    the stated result is at most 40 characters of LaTeX (a long one is retyped wrongly)
      standard_latex  no book macros (``\\dd``, ``\\abs``): the translator need not guess what they mean
      one_variable    at most one letter variable besides the constants e, i and d of dx"""
    sides = [x for x in re.split(r"(?<![<>!=\\])=(?!=)|\\approx", math) if x.strip()]
    have = []
    if _ONE_CALL.search(" ".join(sides[:-1])):
        have.append("one_call")
    if n_comps == 1:
        have.append("one_step")
    if sides and len(sides[-1].strip()) <= 40:
        have.append("short_result")
    if all(m in _STANDARD for m in re.findall(r"\\([A-Za-z]+)", math)):
        have.append("standard_latex")
    letters = set(re.findall(r"(?<![\\A-Za-z])([A-Za-z])(?![A-Za-z])", re.sub(r"\\[A-Za-z]+|_\{[^{}]*\}|_\w", " ", math)))
    if len(letters - {"e", "i", "d", "C"}) <= 1:
        have.append("one_variable")
    return round(len(have) / len(SYMBOLIC_FEATURES), 3), have


def translatable_score(text: str, context: str = "") -> tuple[float, list[str]]:
    """How likely a small translator's block for this passage verifies, from the text alone (no model):
    the share of ``SCORE_FEATURES`` the passage's first computation has, and their names.

      plain_numbers   the expression is numbers and + - × ÷ only (units allowed): one line of Python
      basic_operators no modular arithmetic, powers, roots, factorials, sums, logs
      one_step        one '=' with one result, and one computation in the passage body (no chain a = b = c)
      short_numbers   no operand with more than 4 decimals (a repeating 0.6666666666666666 gets retyped wrongly)
      result_checks   the expression evaluates to the stated result at the precision it is written with (the
                      verifier compares the printed value with that result, so a wrong stated result cannot verify)

    ``text`` is the passage text; ``context`` its leading context (not scored)."""
    body = text[len(context):] if context and text.startswith(context) else text
    comps = find_computations(body)
    if not comps:
        return 0.0, []
    kind, a, b = comps[0]
    # plain arithmetic's pattern ends at the result's first digit: read the result on to the end of its line
    span = body[a:].split("\n", 1)[0] if kind == "arithmetic" else body[a:b]
    math = display_rows(re.sub(r"^\$+|\$+$|^\\[(\[]|\\[)\]]$", "", span.strip()))
    sides = _computation_sides(kind, span)
    if kind not in ("arithmetic", "calculator") and is_symbolic_computation(math, body[max(0, a - 80):a]) and \
            (sides is None or _evaluate(sides[0]) is None):
        return symbolic_score(math, len(comps))
    have: list[str] = []
    if sides is None:
        return 0.0, have
    expr, result, n_eq = sides
    value = _evaluate(expr)
    if value is not None:
        have.append("plain_numbers")
    if not _ADVANCED.search(expr):
        have.append("basic_operators")
    if n_eq == 1 and len(comps) == 1:
        have.append("one_step")
    if not re.search(r"\.\d{5,}", expr):
        have.append("short_numbers")
    if value is not None:
        stated = float(result.replace(",", ""))
        places = len(result.split(".")[1]) if "." in result else 0
        if abs(value - stated) <= 0.5 * 10 ** -places + 1e-9 * max(1.0, abs(stated)):
            have.append("result_checks")
    return round(len(have) / len(SCORE_FEATURES), 3), have
