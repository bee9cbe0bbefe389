"""monitor.xpathfast: every Python twin selects exactly what lxml's XPath selects.

The twins are checked against lxml itself (each keeps its original), on generated pages whose
tags and attribute values are drawn from the expressions' own literals, on hand-made edge cases
of XPath 1.0's semantics, and on the real dev pages when ../shared is present.
"""

from __future__ import annotations

import gzip
import random
import re
from copy import deepcopy
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import trafilatura.xpaths
from lxml import etree

import monitor.extract  # installs the twins, as every extraction worker does
from monitor import xpathfast
from monitor.extract import extract_page
from monitor.xpathfast import FastXPath, Unsupported, compile_xpath

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "extraction-dev"
RE = {"re": xpathfast.REGEXP_NS, "x": "urn:x"}

TWINS = [
    (name, index, expression)
    for name, value in sorted(vars(trafilatura.xpaths).items())
    if isinstance(value, list)
    for index, expression in enumerate(value)
    if isinstance(expression, FastXPath)
]
TAGS = [
    "div", "p", "span", "section", "aside", "article", "main", "a", "list", "item", "ol", "ul",
    "details", "h1", "h2", "h3", "header", "footer", "time", "figure", "address", "strong",
    "cite", "quote", "author", "rel",
]  # fmt: skip
ATTRIBUTES = [
    "id", "class", "style", "role", "aria-hidden", "itemprop", "data-component", "rel",
    "data-lp-replacement-content", "data-testid", "title",
]  # fmt: skip


def _pieces() -> list[str]:
    """Words and literals of every twin's XPath, and each branch of its regular expressions
    made literal: values that hit the predicates."""
    found: set[str] = {"hidden", "display:none", "display: none", "true", "N", "T", "Teaser"}
    for _, _, expression in TWINS:
        for literal in re.findall(r"'([^']*)'", expression.path):
            found.add(literal)
            found.update(w for w in re.split(r"[^\w-]+", literal) if w)
            for branch in re.sub(r"\(\?!.*?\)", "", literal).split("|"):
                plain = re.sub(r"\[(.).*?\]", r"\1", branch)  # [Aa] -> A
                found.add(re.sub(r"\(\?:|[()^$?]|\\s", "", plain))
    return sorted(w for w in found if w)


PIECES = _pieces()
NEAR_MISSES = sorted({s for w in PIECES for s in (w.upper(), w.capitalize(), f"x{w}", f"{w}-x")})


def _value(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return ""
    words = PIECES if rng.random() < 0.7 else NEAR_MISSES
    parts = [rng.choice(words) for _ in range(rng.choice((1, 1, 2, 3)))]
    return rng.choice([" ", "-", "_", ""]).join(parts)


def _page(rng: random.Random, elements: int) -> str:
    """A random page: nested elements, each with attributes in a random order, comments too."""
    out: list[str] = []
    open_tags: list[str] = []
    for _ in range(elements):
        while open_tags and rng.random() < 0.3:
            out.append(f"</{open_tags.pop()}>")
        tag = rng.choice(TAGS)
        names = rng.sample(ATTRIBUTES[:3], rng.randint(0, 2))  # id, class, style the most
        names += [n for n in rng.sample(ATTRIBUTES[3:], rng.randint(0, 2)) if rng.random() < 0.5]
        rng.shuffle(names)
        attrs = "".join(f' {n}="{_value(rng)}"' for n in names)
        out.append(f"<{tag}{attrs}>{rng.choice(('text', 'me', ''))}")
        if rng.random() < 0.1:
            out.append("<!-- a comment -->")
        open_tags.append(tag)
    out.extend(f"</{t}>" for t in reversed(open_tags))
    return "<html><body>" + "".join(out) + "</body></html>"


def _contexts(tree: lxml.html.HtmlElement, rng: random.Random) -> list[etree._Element]:
    elements = list(tree.iter(etree.Element))
    subtree = rng.choice(elements)
    detached = deepcopy(rng.choice(elements))  # its own document, as trafilatura's copies are
    return [tree, subtree, detached]


def test_the_boilerplate_expressions_have_twins() -> None:
    names = {name for name, _, _ in TWINS}
    assert {
        "OVERALL_DISCARD_XPATH",
        "RAW_TREE_PRUNE_XPATH",
        "REMOVE_COMMENTS_AND_LISTS_XPATH",
        "REMOVE_COMMENTS_XPATH",
        "PRECISION_DISCARD_XPATH",
        "TEASER_DISCARD_XPATH",
        "DISCARD_IMAGE_ELEMENTS",
        "AUTHOR_DISCARD_XPATHS",
    } <= names
    assert monitor.extract.XPATH_TWINS == len(TWINS) >= 15


@pytest.mark.parametrize("seed", range(8))
def test_twins_select_what_lxml_selects_on_generated_pages(seed: int) -> None:
    rng = random.Random(seed)
    hits: dict[tuple[str, int], int] = {(name, index): 0 for name, index, _ in TWINS}
    for _ in range(40):
        tree = lxml.html.document_fromstring(_page(rng, rng.randint(5, 80)))
        for context in _contexts(tree, rng):
            for name, index, twin in TWINS:
                expected = twin.original(context)
                assert twin(context) == expected, (name, index, etree.tostring(context)[:300])
                hits[name, index] += len(expected)
    # The pages do hit the predicates, not only miss them.
    assert sum(hits.values()) > 500
    assert sum(n > 0 for n in hits.values()) >= 0.75 * len(hits), hits


def _random_expression(rng: random.Random) -> str:
    """An expression of the subset, its pieces combined as trafilatura's never are."""
    tags, names = ["div", "p", "rel", "x-y"], ["id", "class", "a-b", "x.y"]
    literals = ["''", "'a'", "'ab'", "'A'", "'a b'", "'é'", '"\'"', "'&a'"]

    def value(depth: int = 0) -> str:
        if depth < 2 and rng.random() < 0.2:
            source, target = ("".join(rng.sample("aAbé ", rng.randint(0, 3))) for _ in "st")
            return f"translate({value(depth + 1)}, '{source}', '{target}')"
        return "|".join(f"@{n}" for n in rng.sample(names, rng.choice((1, 1, 2))))

    def atom() -> str:
        return rng.choice(
            [
                lambda: f"self::{rng.choice(tags)}",
                lambda: value(2),
                lambda: f"{value(2)}={rng.choice(literals)}",
                lambda: f"contains({value()}, {rng.choice(literals)})",
                lambda: f"starts-with({value()}, {rng.choice(literals)})",
                lambda: (
                    f"re:test({value()}, '{rng.choice(['^a', 'b$', '^$', 'a|é', '[Aa]b'])}'"
                    + rng.choice(["", ", 'i'", ", 'g'"])
                    + ")"
                ),
                lambda: f".//{rng.choice(tags)}",
                lambda: f"rel={rng.choice(literals)}",
            ]
        )()

    def predicate(depth: int = 0) -> str:
        if depth >= 2 or rng.random() < 0.4:
            return atom()
        if rng.random() < 0.3:
            return f"not({predicate(depth + 1)})"
        operator = rng.choice([" and ", " or "])
        return "(" + operator.join(predicate(depth + 1) for _ in range(2)) + ")"

    def branch(start: str) -> str:
        head = start + rng.choice(["*", "*", "*", *tags])
        if head.endswith("*") and rng.random() < 0.5:
            head += "[" + " or ".join(f"self::{t}" for t in rng.sample(tags, 2)) + "]"
        return head + "".join(f"[{predicate()}]" for _ in range(rng.randint(1, 2)))

    start = rng.choice([".//", ".//", "//"])
    return rng.choice(
        [
            lambda: branch(start),
            lambda: branch(start) + "[1]",
            lambda: f"({branch(start)})[1]",
            lambda: f"{branch(start)} | {branch(start)}",
        ]
    )()


def _random_tree(rng: random.Random) -> etree._Element:
    """Elements (some uppercase or namespaced), comments, PIs and entities, random attributes."""
    root = lxml.html.Element("html")
    elements = [etree.SubElement(root, "body")]
    for _ in range(rng.randint(5, 40)):
        parent = rng.choice(elements[-6:])
        if rng.random() < 0.15:
            other = [etree.Comment("c"), etree.ProcessingInstruction("pi"), etree.Entity("amp")]
            parent.append(rng.choice(other))
            parent[-1].tail = rng.choice([None, "a", "ab"])
            continue
        tag = rng.choice(["div", "p", "rel", "x-y", "DIV", "{urn:x}div", "{urn:x}rel"])
        element = etree.SubElement(parent, tag)
        for name in rng.sample(["id", "class", "a-b", "x.y", "{urn:x}id"], rng.randint(0, 3)):
            element.set(name, "".join(rng.choice(["a", "b", "A", "é", " ", "&"]) for _ in "abc"))
        element.text = rng.choice([None, "a", "ab", "me", "&a"])
        elements.append(element)
    return root


@pytest.mark.parametrize("seed", range(3))
def test_twins_of_random_expressions_select_what_lxml_selects(seed: int) -> None:
    rng = random.Random(seed)
    trees = [_random_tree(rng) for _ in range(6)]
    for _ in range(60):
        expression = etree.XPath(_random_expression(rng), namespaces=RE)
        twin = compile_xpath(expression)
        for tree in trees:
            elements = list(tree.iter(etree.Element))
            for context in (tree, rng.choice(elements), deepcopy(rng.choice(elements))):
                assert twin(context) == expression(context), (expression.path, etree.tostring(tree))


def test_attribute_union_reads_the_one_first_in_the_markup() -> None:
    expression = etree.XPath(".//*[re:test(@id|@class, '^cookie')]", namespaces=RE)
    twin = compile_xpath(expression)
    page = '<div><p class="cookie" id="main">a</p><p id="main" class="cookie">b</p></div>'
    tree = lxml.html.fragment_fromstring(page)
    assert [e.text for e in expression(tree)] == ["a"]
    assert twin(tree) == expression(tree)


@pytest.mark.parametrize(
    "path",
    [
        ".//*[contains(translate(@class, 'ABC', 'ab'), 'abx')]",  # C is dropped
        ".//*[contains(translate(@class, 'AAB', 'abc'), 'ac')]",  # the first A wins
        ".//*[re:test(@class, 'fulltext', 'i')]",
        ".//*[contains(@title, '')]",  # true without the attribute too
        ".//*[re:test(@title, '^$|x')]",  # a pattern that matches ''
        ".//*[starts-with(@id|@class, 'reply-')]",
        ".//*[@class='a b' or @data-x]",
        ".//*[self::div or self::span][not(.//h1) and not(@id)]",
        ".//*[self::div][self::div and (@id='x' or not(@class))][@title]",
        "//*[self::html or self::p]",
        "//*[@id]",
        ".//section",
        "(.//section)[1]",
        "(.//*[self::div or self::span][@class or @title])[1]",
        ".//*[self::div or self::span or self::p][@class or @title][1]",  # first per parent
        ".//*[@class][1]",
        "//*[@id][1]",
        ".//p[1]",
        ".//*[rel='me' or @title='x']",  # a child element's text, not an attribute
        ".//cite|.//section",
        "//*[@id='x']|//p|//*[self::span][@class]",
    ],
)
def test_twin_keeps_xpath_semantics(path: str) -> None:
    page = (
        '<div id="x"><p class="ABCx">1</p><p class="ACB">2</p><span class="FullText">3</span>'
        '<div title="">4<h1>t</h1></div><div class="a b" title="x">5</div><p data-x="">6</p>'
        '<span id="reply-1" class="no">7</span><span class="reply-2" id="no">8</span>'
        "<!-- c --><?pi x?><div><section>9</section></div><p><rel>m<b>e</b></rel></p>"
        "<span><rel>x</rel><rel>me</rel></span><cite>10</cite></div>"
    )
    tree = lxml.html.document_fromstring(page)
    expression = etree.XPath(path, namespaces=RE)
    twin = compile_xpath(expression)
    for context in (tree, tree.body[0], tree.body[0][3]):
        assert twin(context) == expression(context), context.tag


def test_self_tag_does_not_match_a_namespaced_element() -> None:
    tree = etree.fromstring('<r xmlns:x="urn:x"><x:div id="a"/><div id="b"/></r>')
    expression = etree.XPath(".//*[self::div][@id]")
    assert [e.get("id") for e in compile_xpath(expression)(tree)] == ["b"]
    assert compile_xpath(expression)(tree) == expression(tree)


def test_anything_but_a_plain_call_on_an_element_goes_to_lxml() -> None:
    tree = lxml.html.document_fromstring('<div class="caption">x</div>')
    twin = compile_xpath(etree.XPath(".//*[contains(@class, 'caption')]"))
    document = tree.getroottree()
    assert twin(document) == twin.original(document) != []


@pytest.mark.parametrize(
    "make",
    [etree.Comment, lambda: etree.ProcessingInstruction("pi"), lambda: etree.Entity("amp")],
    ids=["comment", "pi", "entity"],
)
@pytest.mark.parametrize("path", [".//*[contains(@class, 'caption')]", "//*[@class][1]"])
def test_a_comment_pi_or_entity_as_the_context_fails_as_in_lxml(make: Any, path: str) -> None:
    # They are lxml _Elements too; lxml refuses them as an XPath context (ValueError), and a
    # twin once answered [] or, for //*, the document's elements.
    tree = lxml.html.document_fromstring('<div><p class="caption">x</p></div>')
    node = make()
    tree.body[0].append(node)
    twin = compile_xpath(etree.XPath(path))
    with pytest.raises(ValueError):
        twin.original(node)
    with pytest.raises(ValueError):
        twin(node)


def test_a_child_elements_text_is_compared_as_lxml_compares_it() -> None:
    # libxml2's node-set = 'text' also hashes the first two characters of the text nodes, which
    # skips an entity reference: a child reading '&x' through one is not equal to '&x' there.
    tree = lxml.html.document_fromstring("<div><p><rel></rel></p><p><rel>me</rel></p></div>")
    rel = tree.body[0][0][0]
    rel.append(etree.Entity("amp"))
    rel[0].tail = "x"
    assert rel.xpath("string()") == "&x"
    expression = etree.XPath(".//*[rel='&x' or rel='me']")
    assert compile_xpath(expression)(tree) == expression(tree) == [tree.body[0][1]]


def test_a_dtd_default_attribute_is_not_an_attribute_to_xpath() -> None:
    root = etree.fromstring(
        '<!DOCTYPE r [<!ATTLIST p class CDATA "caption">]><r><p id="a"/><p class="caption"/></r>'
    )
    assert root[0].get("class") == "caption"  # get() reads the DTD's default, @class does not
    for path in (".//*[contains(@class, 'caption')]", ".//*[@class]", "//*[@class='caption']"):
        expression = etree.XPath(path)
        assert compile_xpath(expression)(root) == expression(root) == [root[1]], path


@pytest.mark.parametrize(
    "path",
    [
        ".//*[1][@class='x']",  # positions other than a final [1]
        ".//*[@class='x'][2]",
        "(.//*[@id])[2]",
        "//div[@class='tags']//a[@href]",  # steps after the predicate
        ".//*[normalize-space(@class)='x']",  # other functions
        ".//*[@class!='x']",
        ".//*[x:rel='me']",  # a prefixed child element
        ".//*[@id]|//p",  # a union of relative and absolute paths
        "(.//p)[1]|(.//div)[1]",  # positions in a union
        ".//*['x']",
        ".//*[@x:lang='en']",
    ],
)
def test_anything_outside_the_subset_is_refused(path: str) -> None:
    with pytest.raises(Unsupported):
        compile_xpath(
            etree.XPath(path, namespaces={**RE, "xml": "http://www.w3.org/XML/1998/namespace"})
        )


def test_install_leaves_other_expressions_to_lxml_and_restore_undoes_it() -> None:
    module = type(trafilatura)("fake_xpaths")
    compiled = etree.XPath(".//*[contains(@class, 'caption')]")
    positional = etree.XPath("(.//article)[2]")
    module.LIST = [compiled, positional]  # type: ignore[attr-defined]
    module.OTHER = ["not an expression"]  # type: ignore[attr-defined]
    assert xpathfast.install(module) == 1
    assert xpathfast.install(module) == 1  # idempotent
    assert isinstance(module.LIST[0], FastXPath) and module.LIST[1] is positional
    assert module.OTHER == ["not an expression"]
    assert xpathfast.restore(module) == 1
    assert [compiled, positional] == module.LIST


@pytest.mark.skipif(not DATA_DIR.is_dir(), reason="../shared/data/extraction-dev is absent")
def test_extraction_of_the_real_pages_is_the_same_with_lxml() -> None:
    pages = [
        (gzip.decompress(path.read_bytes()), f"https://example.com/{path.name}")
        for path in sorted((DATA_DIR / "html").iterdir())
    ]
    with_twins = [extract_page(html, url, detect=False) for html, url in pages]
    restored = xpathfast.restore(trafilatura.xpaths)
    try:
        with_lxml = [extract_page(html, url, detect=False) for html, url in pages]
    finally:
        assert xpathfast.install(trafilatura.xpaths) == restored
    assert len(pages) >= 90
    assert sum(a.text != "" for a in with_lxml) > 80
    assert with_twins == with_lxml
