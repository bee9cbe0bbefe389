"""The topic query language: SQLite FTS5 query syntax, parsed here and normalised.

Users write FTS5 syntax over the ORIGINAL words::

    (kursk OR курск*) AND NEAR("north korean" troops, 10) NOT title:football

- ``AND``, ``OR``, ``NOT`` (upper case), parentheses, implicit AND between terms;
  precedence NOT > AND > OR as in FTS5. ``a AND NOT b`` is accepted as ``a NOT b``.
- ``"exact phrase"``, ``prefix*``, ``"phrase prefix"*``, ``a + b`` (phrase concatenation).
- ``NEAR(a "b c" d, N)`` (N defaults to 10).
- field filters ``title:``, ``body:`` (alias ``text:``), ``{title body}:``, ``-title:``.
- barewords may contain inner hyphens and apostrophes (``kim-jong-un`` is a phrase).

Every term goes through :mod:`monitor.match.normalise`; the result is an FTS5 query over the
normalised ``title``/``body`` columns (``CompiledQuery.fts``). Lower-case and/or/not between
words are rejected as likely mistakes (quote them to search the word).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from monitor.match.normalise import FTS5_TOKENIZE, QueryTokenForm, query_forms

COLUMNS = ("title", "body")
_COLUMN_ALIASES = {"title": "title", "body": "body", "text": "body"}
DEFAULT_NEAR = 10
MAX_NEAR = 100_000
MAX_DEPTH = 40


class QueryError(ValueError):
    """A query that cannot be used; ``str()`` says what is wrong and where.

    ``str()`` is "[topic NAME: ][at character N: ]message", ready to be prefixed with the
    config file and line.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        query: str = "",
        topic: str | None = None,
    ) -> None:
        self.message = message
        self.position = position  # 1-based character position in the query, when known
        self.query = query
        self.topic = topic
        where = f"at character {position}: " if position is not None else ""
        name = f"topic {topic}: " if topic is not None else ""
        super().__init__(f"{name}{where}{message}")


# ---------------------------------------------------------------------------------------------
# Syntax tree. Column filters are pushed down to the leaves (Phrase, Near) while parsing.


@dataclass(frozen=True)
class Phrase:
    source: str  # as the user wrote it (quotes removed), e.g. 'north korea', 'курск*'
    forms: tuple[QueryTokenForm, ...]
    columns: tuple[str, ...] | None = None  # None: every column


@dataclass(frozen=True)
class Near:
    phrases: tuple[Phrase, ...]
    distance: int
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    keep: Node
    drop: Node


Node = Phrase | Near | And | Or | Not


@dataclass(frozen=True)
class CompiledQuery:
    source: str  # the query as written
    fts: str  # the FTS5 query over the normalised columns
    tree: Node = field(repr=False)
    phrases: tuple[Phrase, ...] = field(repr=False)  # positive leaves, for terms and highlights

    @property
    def terms(self) -> tuple[str, ...]:
        """The positive query terms as the user wrote them, without duplicates."""
        return tuple(dict.fromkeys(p.source for p in self.phrases))


# ---------------------------------------------------------------------------------------------
# Lexer


@dataclass(frozen=True)
class _Tok:
    kind: str  # WORD STRING ( ) { } : - * + ^ , AND OR NOT NEAR END
    text: str
    pos: int  # 1-based


_ASCII_WORD = re.compile(r"[A-Za-z0-9_\x1a]")
_INNER_PUNCT = "-'’."
_SINGLE = "(){}:*+^,"


def _is_word_char(ch: str) -> bool:
    return bool(_ASCII_WORD.match(ch)) or (not ch.isascii() and not ch.isspace())


def _lex(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch == '"':
            i = _lex_string(query, i, toks)
        elif ch in _SINGLE or ch == "-":
            toks.append(_Tok(ch, ch, i + 1))
            i += 1
        elif _is_word_char(ch):
            i = _lex_word(query, i, toks)
        else:
            raise QueryError(
                f"unexpected character {ch!r} (put words with punctuation in double quotes)",
                position=i + 1,
                query=query,
            )
    toks.append(_Tok("END", "", n + 1))
    return toks


def _lex_string(query: str, i: int, toks: list[_Tok]) -> int:
    start, j, chars = i, i + 1, []
    while True:
        if j >= len(query):
            raise QueryError("unterminated double quote", position=start + 1, query=query)
        if query[j] == '"':
            if j + 1 < len(query) and query[j + 1] == '"':  # "" is an escaped quote, as in FTS5
                chars.append('"')
                j += 2
                continue
            toks.append(_Tok("STRING", "".join(chars), start + 1))
            return j + 1
        chars.append(query[j])
        j += 1


def _lex_word(query: str, i: int, toks: list[_Tok]) -> int:
    j, n = i, len(query)
    while j < n:
        if _is_word_char(query[j]) or (
            query[j] in _INNER_PUNCT and j + 1 < n and _is_word_char(query[j + 1]) and j > i
        ):
            j += 1
        else:
            break
    word = query[i:j]
    is_near_call = word == "NEAR" and query[j:].lstrip().startswith("(")
    kind = word if word in ("AND", "OR", "NOT") or is_near_call else "WORD"
    toks.append(_Tok(kind, word, i + 1))
    return j


# ---------------------------------------------------------------------------------------------
# Parser: or_expr := and_expr (OR and_expr)*
#         and_expr := not_expr ([AND] [NOT] not_expr)*      ("AND NOT x" subtracts x)
#         not_expr := unary (NOT unary)*
#         unary := [colspec ":"] primary
#         primary := "(" or_expr ")" | NEAR "(" phrase+ ["," N] ")" | phrase ("+" phrase)*


_OPERAND_STARTS = {"WORD", "STRING", "(", "{", "-", "NEAR", "^"}
_NOT_ALONE = "NOT needs something on its left to subtract from, e.g. 'russia NOT football'"
_LOWER_OPERATORS = {"and": "AND", "or": "OR", "not": "NOT"}


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.toks = _lex(query)
        self.i = 0
        self.depth = 0

    # helpers
    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: _Tok | None = None) -> QueryError:
        pos = (tok or self.peek()).pos
        return QueryError(message, position=pos, query=self.query)

    def expect(self, kind: str, what: str) -> _Tok:
        tok = self.peek()
        if tok.kind != kind:
            raise self.error(f"expected {what}, found {_describe(tok)}")
        return self.take()

    # grammar
    def parse(self) -> Node:
        if self.peek().kind == "END":
            raise self.error("the query is empty")
        node = self.or_expr(None)
        tok = self.peek()
        if tok.kind == ")":
            raise self.error("')' without a matching '('")
        if tok.kind != "END":
            raise self.error(f"unexpected {_describe(tok)}")
        return node

    def or_expr(self, cols: tuple[str, ...] | None) -> Node:
        children = [self.and_expr(cols)]
        while self.peek().kind == "OR":
            op = self.take()
            self.require_operand(op)
            children.append(self.and_expr(cols))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self, cols: tuple[str, ...] | None) -> Node:
        if self.peek().kind == "NOT":
            raise self.error(_NOT_ALONE)
        keep = [self.not_expr(cols)]
        drop: list[Node] = []
        while True:
            tok = self.peek()
            if tok.kind == "AND":
                self.take()
                if self.peek().kind == "NOT":
                    not_tok = self.take()
                    self.require_operand(not_tok)
                    drop.append(self.unary(cols))
                    continue
                self.require_operand(tok)
                keep.append(self.not_expr(cols))
            elif tok.kind in _OPERAND_STARTS:
                keep.append(self.not_expr(cols))
            else:
                break
        node: Node = keep[0] if len(keep) == 1 else And(tuple(keep))
        for dropped in drop:
            node = Not(node, dropped)
        return node

    def not_expr(self, cols: tuple[str, ...] | None) -> Node:
        node = self.unary(cols)
        while self.peek().kind == "NOT":
            op = self.take()
            self.require_operand(op)
            node = Not(node, self.unary(cols))
        return node

    def require_operand(self, op: _Tok) -> None:
        tok = self.peek()
        if tok.kind == "NOT":
            raise self.error(_NOT_ALONE)
        if tok.kind not in _OPERAND_STARTS:
            raise self.error(f"{op.text} must be followed by a term, found {_describe(tok)}", tok)

    def unary(self, cols: tuple[str, ...] | None) -> Node:
        cols = self.column_filter(cols)
        tok = self.peek()
        if tok.kind == "(":
            self.take()
            if self.peek().kind == ")":
                raise self.error("empty parentheses", tok)
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"parentheses nested more than {MAX_DEPTH} deep", tok)
            node = self.or_expr(cols)
            self.depth -= 1
            if self.peek().kind != ")":
                raise self.error(
                    f"expected ')' to close the '(' at character {tok.pos}, "
                    f"found {_describe(self.peek())}"
                )
            self.take()
            return node
        if tok.kind == "NEAR":
            return self.near(cols)
        return self.phrase_chain(cols)

    def column_filter(self, cols: tuple[str, ...] | None) -> tuple[str, ...] | None:
        tok = self.peek()
        nxt = self.toks[self.i + 1]
        if tok.kind == "WORD" and nxt.kind == ":":
            self.i += 2
            return _narrow(cols, (self.column_name(tok),), self, tok)
        if tok.kind == "{":
            self.take()
            names = []
            while self.peek().kind == "WORD":
                names.append(self.column_name(self.take()))
            self.expect("}", "'}' to close the field list")
            self.expect(":", "':' after the field list")
            if not names:
                raise self.error("empty field list", tok)
            return _narrow(cols, tuple(names), self, tok)
        if tok.kind == "-":
            self.take()
            inner = self.peek()
            if inner.kind == "WORD" and self.toks[self.i + 1].kind == ":":
                self.i += 2
                excluded = self.column_name(inner)
                return _narrow(cols, tuple(c for c in COLUMNS if c != excluded), self, tok)
            if inner.kind == "{":
                rest = self.column_filter(None) or ()
                return _narrow(cols, tuple(c for c in COLUMNS if c not in rest), self, tok)
            raise self.error(
                "'-' is only used before a field filter such as -title: "
                "(to exclude a word use NOT, to search a hyphenated word quote it)",
                tok,
            )
        return cols

    def column_name(self, tok: _Tok) -> str:
        name = _COLUMN_ALIASES.get(tok.text.lower())
        if name is None:
            raise self.error(f"unknown field '{tok.text}:' (the fields are title: and body:)", tok)
        return name

    def near(self, cols: tuple[str, ...] | None) -> Near:
        near_tok = self.take()
        self.expect("(", "'(' after NEAR")
        phrases: list[Phrase] = []
        while self.peek().kind in ("WORD", "STRING"):
            phrases.append(self.phrase_chain(cols))
        distance = DEFAULT_NEAR
        if self.peek().kind == ",":
            self.take()
            num = self.peek()
            if num.kind != "WORD" or not num.text.isdigit():
                raise self.error(f"NEAR distance must be a whole number, found {_describe(num)}")
            distance = int(self.take().text)
            if distance > MAX_NEAR:
                raise self.error(f"NEAR distance must be at most {MAX_NEAR}", num)
        if self.peek().kind != ")":
            raise self.error(
                "NEAR takes terms and an optional distance: NEAR(a b, 10); "
                f"found {_describe(self.peek())}"
            )
        self.take()
        if len(phrases) < 2:
            raise self.error("NEAR needs at least two terms, e.g. NEAR(putin kim, 10)", near_tok)
        return Near(tuple(phrases), distance, cols)

    def phrase_chain(self, cols: tuple[str, ...] | None) -> Phrase:
        first = self.peek()
        if first.kind == "^":
            raise self.error("'^' (start of field) is not supported")
        parts = [self.phrase(cols)]
        while self.peek().kind == "+":
            self.take()
            parts.append(self.phrase(cols))
        if len(parts) == 1:
            return parts[0]
        source = " ".join(p.source for p in parts)
        return Phrase(source, tuple(f for p in parts for f in p.forms), cols)

    def phrase(self, cols: tuple[str, ...] | None) -> Phrase:
        tok = self.peek()
        if tok.kind not in ("WORD", "STRING"):
            raise self.error(f"expected a term, found {_describe(tok)}")
        self.take()
        if tok.kind == "WORD" and tok.text.lower() in _LOWER_OPERATORS:
            raise self.error(
                f"'{tok.text}' would be searched as a word: write "
                f"{_LOWER_OPERATORS[tok.text.lower()]}"
                f' for the operator, or "{tok.text}" to search the word',
                tok,
            )
        text, prefix = tok.text, False
        if tok.kind == "STRING":
            text, prefix = self.quoted_prefix(tok)
        if self.peek().kind == "*":
            self.take()
            prefix = True
        forms = query_forms(text, prefix=prefix)
        if not forms:
            raise self.error(f"the term {_describe(tok)} has no letters or digits to search", tok)
        source = tok.text + ("*" if prefix and not tok.text.rstrip().endswith("*") else "")
        return Phrase(source, tuple(forms), cols)

    def quoted_prefix(self, tok: _Tok) -> tuple[str, bool]:
        """A phrase written with its star inside the quotes ("north korea*") is a prefix on its
        last word, as "north korea"* is (and as a list-form term is); a star anywhere else in a
        phrase would be dropped silently, so it is refused."""
        text = tok.text.rstrip()
        prefix = text.endswith("*")
        core = text.rstrip("*")
        if "*" in core:
            raise self.error(
                f"a '*' inside quotes makes a prefix only at the end of the phrase: "
                f'{_describe(tok)} (e.g. "north korea*")',
                tok,
            )
        return core, prefix


def _narrow(
    outer: tuple[str, ...] | None, inner: tuple[str, ...], parser: _Parser, tok: _Tok
) -> tuple[str, ...]:
    """Nested field filters intersect, as in FTS5."""
    cols = tuple(c for c in COLUMNS if c in inner and (outer is None or c in outer))
    if not cols:
        raise parser.error("these field filters leave no field to search", tok)
    return cols


def _describe(tok: _Tok) -> str:
    if tok.kind == "END":
        return "the end of the query"
    if tok.kind == "STRING":
        return f'"{tok.text}"'
    return f"'{tok.text}'"


# ---------------------------------------------------------------------------------------------
# Emitting FTS5


def _fts_string(norm: str) -> str:
    return '"' + norm.replace('"', '""') + '"'


def _emit_phrase_body(forms: Sequence[QueryTokenForm]) -> str:
    """FTS5 phrase: consecutive tokens in one string, a prefix token closes its string with *."""
    groups: list[str] = []
    current: list[str] = []
    for form in forms:
        current.append(form.norm)
        if form.prefix:
            groups.append(_fts_string(" ".join(current)) + "*")
            current = []
    if current:
        groups.append(_fts_string(" ".join(current)))
    return " + ".join(groups)


def _emit_columns(cols: tuple[str, ...] | None) -> str:
    if cols is None or len(cols) == len(COLUMNS):
        return ""
    if len(cols) == 1:
        return f"{cols[0]} : "
    return "{" + " ".join(cols) + "} : "


def _emit(node: Node, top: bool = False) -> str:
    if isinstance(node, Phrase):
        return _emit_columns(node.columns) + _emit_phrase_body(node.forms)
    if isinstance(node, Near):
        inner = " ".join(_emit_phrase_body(p.forms) for p in node.phrases)
        return f"{_emit_columns(node.columns)}NEAR({inner}, {node.distance})"
    if isinstance(node, And | Or):
        op = " AND " if isinstance(node, And) else " OR "
        # "sanctions OR sanction" normalise to the same term: emit it once
        children = list(dict.fromkeys(_emit(c) for c in node.children))
        if len(children) == 1:
            return _emit(node.children[0], top)
        text = op.join(children)
    else:
        text = f"{_emit(node.keep)} NOT {_emit(node.drop)}"
    return text if top else f"({text})"


def _positive_phrases(node: Node) -> list[Phrase]:
    if isinstance(node, Phrase):
        return [node]
    if isinstance(node, Near):
        return list(node.phrases)
    if isinstance(node, Not):
        return _positive_phrases(node.keep)
    return [p for c in node.children for p in _positive_phrases(c)]


# ---------------------------------------------------------------------------------------------
# Public API


def parse_query(query: str) -> Node:
    """The syntax tree of ``query``; raises QueryError."""
    return _Parser(query).parse()


@lru_cache(maxsize=4096)
def compile_query(query: str) -> CompiledQuery:
    """Parse, normalise and emit ``query`` for FTS5; raises QueryError. Checked by FTS5 too."""
    tree = parse_query(query)
    compiled = CompiledQuery(query, _emit(tree, top=True), tree, tuple(_positive_phrases(tree)))
    _check_with_fts5(compiled)
    return compiled


def validate_query(query: str) -> None:
    """Raise QueryError with a human message if ``query`` cannot be used."""
    compile_query(query)


def _check_with_fts5(compiled: CompiledQuery) -> None:
    """Run the compiled query on an empty FTS5 table, so SQLite agrees that it is valid."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(f'CREATE VIRTUAL TABLE q USING fts5(title, body, tokenize="{FTS5_TOKENIZE}")')
        conn.execute("SELECT rowid FROM q WHERE q MATCH ?", (compiled.fts,)).fetchall()
    except sqlite3.Error as exc:
        raise QueryError(
            f"SQLite rejected the compiled query {compiled.fts!r}: {exc}", query=compiled.source
        ) from exc
    finally:
        conn.close()


_BARE_TERM = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*\*?")


def _list_term(term: str, where: str) -> str:
    text = term.strip()
    if not text:
        raise QueryError(f"{where}: empty term")
    prefix = text.endswith("*")
    core = text.rstrip("*").strip()
    if not query_forms(core):
        raise QueryError(f"{where}: the term {term!r} has no letters or digits to search")
    is_operator = core in ("AND", "OR", "NOT", "NEAR") or core.lower() in _LOWER_OPERATORS
    if _BARE_TERM.fullmatch(text) and not is_operator:
        return text
    return _fts_string(core) + ("*" if prefix else "")


def _list_group(terms: Sequence[str], where: str) -> str:
    if isinstance(terms, str):
        terms = [terms]  # a lone string in YAML instead of a one-item list
    if not terms:
        raise QueryError(f"{where} is empty")
    parts = [_list_term(t, f"{where}[{i}]") for i, t in enumerate(terms)]
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def compile_list_form(
    all: Sequence[Sequence[str]],
    any: Sequence[str] = (),
    none: Sequence[str] = (),
) -> str:
    """The list form of a topic as a query in the same language.

    ``all``: every group must match one of its terms; ``any``: one of these must match (empty:
    no constraint); ``none``: reject when any matches (empty: no constraint). Multi-word terms
    become phrases; a trailing ``*`` keeps a term a prefix.
    """
    required = [_list_group(g, f"all[{i}]") for i, g in enumerate(all)]
    if any:
        required.append(_list_group(any, "any"))
    if not required:
        raise QueryError("the list form needs at least one term in 'all' or 'any'")
    query = " AND ".join(required)
    if none:
        query = f"{_wrap(query, len(required))} NOT {_list_group(none, 'none')}"
    validate_query(query)
    return query


def _wrap(query: str, parts: int) -> str:
    return f"({query})" if parts > 1 else query
