"""trafilatura's element-selecting XPaths, evaluated in Python with the same result.

trafilatura finds boilerplate with XPaths like ``.//*[self::div or self::p][re:test(@class,
'share|footer|...') or contains(@style, 'display:none')]``. lxml runs each EXSLT ``re:test`` as a
Python callback per element, so these few expressions cost about a third of an article's
extraction (6-8 ms of ~16 ms on the dev pages). The same selection written as a Python function
over each element's attributes, one call per element, is several times cheaper.

``compile_xpath`` accepts only the subset these expressions use: ``.//*``, ``//*`` or ``.//tag``,
then predicates made of ``self::tag``, ``@attr``, ``@a|@b``, ``@attr='lit'``, ``contains``,
``starts-with``, ``translate``, ``re:test``, ``not``, ``and``, ``or`` and ``.//tag``, and
optionally ``[1]`` after them (``path[1]``) or around the whole (``(path)[1]``). It raises
``Unsupported`` for anything else. ``install`` swaps, inside trafilatura's own lists, each
expression it can compile for its Python twin, and leaves every other one to lxml, so a later
trafilatura with new constructs stays correct (just not faster for those). The twins are tested
against lxml on generated and real pages (``tests/test_xpathfast.py``).

XPath 1.0 semantics kept here: an absent attribute's string value is ``''``; a set of attributes
(``@id|@class``) reads as its first member in document order, which for one element's
attributes is their order in the markup; ``@a='x'`` holds if any member equals ``'x'``; the
``re`` functions search (not match) with Python's ``re``, as lxml does, flag ``i`` ignoring case.
A comment, PI or entity as the context, and a tree from an XML parser that carries a DTD, go to
lxml (see ``_without_dtd``).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree

__all__ = ["FastXPath", "Unsupported", "compile_xpath", "install", "restore"]

REGEXP_NS = "http://exslt.org/regular-expressions"
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'[^']*'|"[^"]*")
      | (?P<path>\.?//(?:\*|[A-Za-z][\w-]*))
      | (?P<axis>self::[A-Za-z][\w-]*)
      | (?P<attr>@[A-Za-z_][\w.-]*(?![\w.:-]))
      | (?P<name>[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)
      | (?P<number>\d+)
      | (?P<punct>[\[\](),|=])
    )""",
    re.VERBOSE,
)

Selector = Callable[[Iterator[Any]], list[Any]]


class Unsupported(ValueError):
    """The expression uses XPath this module does not evaluate; lxml keeps it."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(path: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(path):
        if path[pos:].strip() == "":
            break
        match = _TOKEN.match(path, pos)
        if not match or match.lastgroup is None:
            raise Unsupported(f"cannot read {path[pos : pos + 20]!r}")
        out.append(_Token(match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    return out


class _Parser:
    """Recursive descent over the subset, producing Python source for one predicate."""

    def __init__(self, tokens: list[_Token], namespaces: dict[str, str]) -> None:
        self.tokens = tokens
        self.at = 0
        self.namespaces = namespaces
        self.constants: dict[str, object] = {}
        self.attributes: dict[str, str] = {}  # attribute name -> local variable

    # -- token helpers
    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, kind: str, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None or token.kind != kind or (text is not None and token.text != text):
            raise Unsupported(f"expected {text or kind}, found {token.text if token else 'end'}")
        self.at += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        if token is not None and token.kind == kind and (text is None or token.text == text):
            self.at += 1
            return True
        return False

    def constant(self, value: object) -> str:
        name = f"_k{len(self.constants)}"
        self.constants[name] = value
        return name

    def attribute(self, name: str) -> str:
        if name not in self.attributes:
            self.attributes[name] = f"_a{len(self.attributes)}"
        return self.attributes[name]

    # -- grammar
    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while self.accept("name", "or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.unary()]
        while self.accept("name", "and"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"

    def unary(self) -> str:
        token = self.peek()
        if token is None:
            raise Unsupported("unexpected end")
        if token.kind == "punct" and token.text == "(":
            self.at += 1
            inner = self.or_expr()
            self.take("punct", ")")
            return inner
        if token.kind == "axis":
            self.at += 1
            return f"(_tag == {token.text[len('self::') :]!r})"
        if token.kind == "path" and token.text.startswith(".//") and token.text != ".//*":
            self.at += 1
            tag = token.text[3:]
            return f"(next(_el.iterdescendants({tag!r}), None) is not None)"
        if token.kind == "attr":
            return self.attribute_test()
        if token.kind == "name":
            return self.function()
        raise Unsupported(f"unexpected {token.text!r}")

    def attribute_set(self) -> list[str]:
        names = [self.take("attr").text[1:]]
        while self.accept("punct", "|"):
            names.append(self.take("attr").text[1:])
        return names

    def attribute_test(self) -> str:
        names = self.attribute_set()
        if self.accept("punct", "="):
            literal = self.literal()
            return "(" + " or ".join(f"{self.attribute(n)} == {literal!r}" for n in names) + ")"
        return "(" + " or ".join(f"{self.attribute(n)} is not None" for n in names) + ")"

    def literal(self) -> str:
        return self.take("string").text[1:-1]

    def string_argument(self) -> tuple[str, str]:
        """Python source for the string value of ``@a``, ``@a|@b`` or ``translate(...)``, and
        for "one of those attributes is present" (else the value is ``''``)."""
        if self.accept("name", "translate"):
            self.take("punct", "(")
            inner, present = self.string_argument()
            self.take("punct", ",")
            source = self.literal()
            self.take("punct", ",")
            target = self.literal()
            self.take("punct", ")")
            table = self.constant(_translation(source, target))
            return f"{inner}.translate({table})", present
        names = self.attribute_set()
        present = "(" + " or ".join(f"{self.attribute(n)} is not None" for n in names) + ")"
        if len(names) == 1:
            return f"({self.attribute(names[0])} or '')", present
        return f"_first(_el, {tuple(names)!r})", present

    @staticmethod
    def guarded(test: str, present: str, holds_on_empty: bool) -> str:
        # Most elements lack the attribute: skip the string work when the test fails on ''.
        return test if holds_on_empty else f"({present} and {test})"

    def function(self) -> str:
        name = self.take("name").text
        if self.accept("punct", "="):  # a child element's string value, e.g. rel='me'
            if ":" in name:
                raise Unsupported(f"a prefixed name {name}")
            literal = self.literal()
            # lxml compares each child itself: libxml2's node-set = string skips a child whose text
            # starts inside an entity reference (its hash ignores them), so string() == would differ.
            return f"any(_equals(_c, value={literal!r}) for _c in _el.iterchildren({name!r}))"
        if name == "not":
            self.take("punct", "(")
            inner = self.or_expr()
            self.take("punct", ")")
            return f"(not {inner})"
        if name in ("contains", "starts-with"):
            self.take("punct", "(")
            value, present = self.string_argument()
            self.take("punct", ",")
            literal = self.literal()
            self.take("punct", ")")
            method = "__contains__" if name == "contains" else "startswith"
            return self.guarded(f"{value}.{method}({literal!r})", present, literal == "")
        prefix, _, local = name.rpartition(":")
        if local == "test" and prefix and self.namespaces.get(prefix) == REGEXP_NS:
            return self.regex_test()
        raise Unsupported(f"function {name}")

    def regex_test(self) -> str:
        self.take("punct", "(")
        value, present = self.string_argument()
        self.take("punct", ",")
        pattern = self.literal()
        flags = ""
        if self.accept("punct", ","):
            flags = self.literal()
        self.take("punct", ")")
        if set(flags) - {"i", "g"}:
            raise Unsupported(f"regex flags {flags!r}")
        compiled = re.compile(pattern, re.IGNORECASE if "i" in flags else 0)
        test = f"({self.constant(compiled.search)}({value}) is not None)"
        return self.guarded(test, present, compiled.search("") is not None)


def _translation(source: str, target: str) -> dict[int, int | None]:
    """XPath translate(): a character of ``source`` becomes the one at its place in ``target``,
    or is dropped when ``target`` is shorter; only its first occurrence in ``source`` counts."""
    table: dict[int, int | None] = {}
    for index, char in enumerate(source):
        if ord(char) not in table:
            table[ord(char)] = ord(target[index]) if index < len(target) else None
    return table


def _first(element: Any, names: tuple[str, ...]) -> str:
    """String value of ``@a|@b``: the attribute among ``names`` that comes first in the markup."""
    for key, value in element.items():
        if key in names:
            return str(value)
    return ""


def _without_dtd(node: etree._Element) -> bool:
    """No DTD lends the tree attributes: for an absent attribute ``_el.get()`` returns a default
    from a DTD's <!ATTLIST>, which XPath's ``@attr`` does not see, and libxml2's ``@a='x'`` misses
    a value holding an entity reference. lxml.html's parser (trafilatura's) reads no DTD."""
    tree = node.getroottree()
    if isinstance(tree.parser, etree.HTMLParser):
        return True
    info = tree.docinfo
    return info.internalDTD is None and info.externalDTD is None


_equals = etree.XPath(". = $value")  # a child element's string value equals a literal, as lxml


class FastXPath:
    """A callable standing in for an ``lxml.etree.XPath`` that selects elements: same nodes,
    same (document) order. Anything but a plain call on an element goes to the original."""

    def __init__(
        self, original: etree.XPath, select: Selector, absolute: bool, tags: tuple[str, ...]
    ) -> None:
        self.original = original
        self.path = original.path
        self._select = select
        self._absolute = absolute
        self._tags = tags

    def __call__(self, node: Any, **variables: Any) -> Any:
        # A comment, PI or entity is an _Element too, but lxml refuses it as a context (ValueError).
        if variables or not isinstance(node, etree._Element) or not isinstance(node.tag, str):
            return self.original(node, **variables)
        if not _without_dtd(node):
            return self.original(node)
        return self._select(self._candidates(node))

    def _candidates(self, node: etree._Element) -> Iterator[etree._Element]:
        tags: tuple[Any, ...] = self._tags or (etree.Element,)  # elements, not comments or PIs
        if self._absolute:  # //*: every element of the document, the root element included
            root: etree._Element = node.getroottree().getroot()
            return iter(root.iter(*tags))
        return iter(node.iterdescendants(*tags))

    def __repr__(self) -> str:
        return f"FastXPath({self.path!r})"


def compile_xpath(original: etree.XPath, namespaces: dict[str, str] | None = None) -> FastXPath:
    """The Python twin of ``original``, or ``Unsupported``."""
    tokens, position = _position(_tokens(original.path))
    branches = _union_branches(tokens)
    if position != "all" and len(branches) > 1:
        raise Unsupported("a position over a union")
    parser = _Parser([], namespaces if namespaces is not None else {"re": REGEXP_NS})
    parsed = [_branch(parser, branch) for branch in branches]
    if len({absolute for absolute, _, _ in parsed}) > 1:
        raise Unsupported("a union of relative and absolute paths")
    if len(parsed) == 1:
        absolute, tags, clauses = parsed[0]
        return FastXPath(original, _build(clauses, parser, position), absolute, tags)
    # One pass for the whole union: an element is selected if any branch selects it.
    either = []
    for _, tags, clauses in parsed:
        tag_test = [f"(_tag in {tags!r})"] if tags else []
        either.append("(" + " and ".join(tag_test + clauses or ["True"]) + ")")
    all_tags = (
        ()
        if any(not tags for _, tags, _ in parsed)
        else tuple(dict.fromkeys(tag for _, tags, _ in parsed for tag in tags))
    )
    select = _build(["(" + " or ".join(either) + ")"], parser, position)
    return FastXPath(original, select, parsed[0][0], all_tags)


def _closes(texts: list[str]) -> int:
    """Index of the token that closes the parenthesis opening ``texts``."""
    depth = 0
    for index, text in enumerate(texts):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(text, 0)
        if depth == 0:
            return index
    return -1


def _union_branches(tokens: list[_Token]) -> list[list[_Token]]:
    """``a|b`` split at its top-level bars (a bar inside a predicate joins attributes)."""
    branches: list[list[_Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "punct" and token.text in "[(":
            depth += 1
        elif token.kind == "punct" and token.text in "])":
            depth -= 1
        elif token.kind == "punct" and token.text == "|" and depth == 0:
            branches.append([])
            continue
        branches[-1].append(token)
    return branches


def _branch(parser: _Parser, tokens: list[_Token]) -> tuple[bool, tuple[str, ...], list[str]]:
    """One path of the subset: whether it starts at the document, its tag filter, and its
    predicates as Python source."""
    head = tokens[0] if tokens else None
    if head is None or head.kind != "path":
        raise Unsupported("only .//*, //*, .//tag or //tag, then predicates")
    parser.tokens, parser.at = tokens[1:], 0
    star = head.text.endswith("*")
    tags = _leading_tags(parser) if star else (head.text.lstrip("./"),)
    clauses: list[str] = []
    while parser.accept("punct", "["):
        if parser.peek() is not None and parser.peek().kind == "string":  # type: ignore[union-attr]
            raise Unsupported("a string predicate")
        clauses.append(parser.or_expr())
        parser.take("punct", "]")
    if parser.peek() is not None or (not clauses and not tags):
        raise Unsupported("trailing or missing predicate")
    return head.text.startswith("//"), tags, clauses


def _position(tokens: list[_Token]) -> tuple[list[_Token], str]:
    """Strip a trailing ``[1]``: ``(path)[1]`` is the first match in document order ("first"),
    ``path[1]`` the first match among each element's children ("first child")."""
    texts = [t.text for t in tokens]
    if (
        texts[:1] == ["("]
        and texts[-4:] == [")", "[", "1", "]"]
        and _closes(texts) == len(texts) - 4
    ):
        return tokens[1:-4], "first"
    if texts[-3:] == ["[", "1", "]"]:
        return tokens[:-3], "first child"
    return tokens, "all"


def _leading_tags(parser: _Parser) -> tuple[str, ...]:
    """``[self::a or self::b]`` as the first predicate becomes a tag filter lxml applies in C."""
    start = parser.at
    if not parser.accept("punct", "["):
        return ()
    tags: list[str] = []
    while True:
        token = parser.peek()
        if token is None or token.kind != "axis":
            break
        parser.at += 1
        tags.append(token.text[len("self::") :])
        if parser.accept("punct", "]"):
            return tuple(tags)
        if not parser.accept("name", "or"):
            break
    parser.at = start
    return ()


def _build(clauses: list[str], parser: _Parser, position: str) -> Selector:
    """One generated function runs the loop, so an element costs no Python call of its own."""
    lines = ["def _select(_elements):", "    _out = []", "    _parents = set()"]
    lines.append("    for _el in _elements:")
    if "_tag" in " ".join(clauses):
        lines.append("        _tag = _el.tag")
    lines += [f"        {var} = _el.get({name!r})" for name, var in parser.attributes.items()]
    lines.append("        if " + (" and ".join(clauses) or "True") + ":")
    if position == "first":
        lines.append("            return [_el]")
    elif position == "first child":  # document order meets each parent's children in order
        lines.append("            _parent = _el.getparent()")
        lines.append("            if _parent in _parents:")
        lines.append("                continue")
        lines.append("            _parents.add(_parent)")
    lines += ["            _out.append(_el)", "    return _out"]
    namespace: dict[str, object] = {"_first": _first, "_equals": _equals, **parser.constants}
    exec("\n".join(lines), namespace)
    return namespace["_select"]  # type: ignore[return-value]


def install(module: types.ModuleType) -> int:
    """Swap, in place, each XPath of ``module``'s lists (trafilatura.xpaths) that has a Python
    twin; the lists are shared by every trafilatura module that imported them. Idempotent.
    Returns how many expressions run in Python."""
    count = 0
    for value in vars(module).values():
        if not isinstance(value, list):
            continue
        for index, expression in enumerate(value):
            if isinstance(expression, FastXPath):
                count += 1
            elif isinstance(expression, etree.XPath):
                try:
                    value[index] = compile_xpath(expression)
                except (Unsupported, re.error):
                    continue
                count += 1
    return count


def restore(module: types.ModuleType) -> int:
    """Undo ``install``: put lxml's own expressions back (to compare the two). Returns how many."""
    count = 0
    for value in vars(module).values():
        if isinstance(value, list):
            for index, expression in enumerate(value):
                if isinstance(expression, FastXPath):
                    value[index] = expression.original
                    count += 1
    return count
