"""The extract stage: generated pages with realistic chrome, hostile input, the real dev set."""

from __future__ import annotations

import json
import pickle
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trafilatura
from lxml.html import HtmlElement
from trafilatura.metadata import extract_author
from trafilatura.settings import Document
from trafilatura.utils import load_html

import bench.extraction_metric as metric
import monitor.extract as extract
from monitor.extract import ExtractedPage, decode_html, detect_language, extract_page
from monitor.language import warm_up

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "extraction-dev"


@dataclass(frozen=True)
class Article:
    lang: str
    site: str
    title: str
    author: str
    published: str  # ISO-8601 as the page writes it
    paragraphs: tuple[str, ...]
    nav: tuple[str, ...]
    cookie: str
    related: tuple[str, ...]
    comments: tuple[str, ...]
    footer: str


ENGLISH = Article(
    lang="en",
    site="Harbour Courier",
    title="City council approves new tram line along the river",
    author="Maria Lindqvist",
    published="2026-03-14T09:30:00+01:00",
    paragraphs=(
        "The city council voted on Thursday evening to approve a new tram line that will run "
        "along the eastern bank of the river, connecting the old harbour district with the "
        "university campus in the north.",
        "Construction is expected to begin next spring and last about three years. The project "
        "is estimated to cost 420 million euros, most of which will come from a regional "
        "infrastructure fund set up after the floods of last decade.",
        "Supporters of the plan argued that the line would cut commuting times by half for "
        "thousands of students and nurses who currently rely on crowded buses. Opponents "
        "warned that shop owners on Quay Street would lose business during the works.",
        "The mayor said the council would publish a detailed timetable for the construction "
        "phases in the coming weeks and promised compensation for affected businesses.",
    ),
    nav=("Home", "World", "Business", "Sport", "Culture", "Weather"),
    cookie="We use cookies to personalise content and ads. Accept all cookies to continue.",
    related=(
        "Five things to know about the new ferry timetable",
        "Opinion: why our buses are always late",
        "Harbour festival returns after a two-year break",
    ),
    comments=(
        "Finally! I have been waiting for this tram for twenty years, absolutely brilliant news.",
        "Another waste of taxpayers money, mark my words the budget will double by next year.",
    ),
    footer="Copyright 2026 Harbour Courier Media Group. All rights reserved.",
)

RUSSIAN = Article(
    lang="ru",
    site="Северный вестник",
    title="В Архангельске открыли новый мост через Северную Двину",
    author="Ольга Смирнова",
    published="2026-02-03T12:00:00+03:00",
    paragraphs=(
        "Во вторник в Архангельске торжественно открыли новый автомобильный мост через "
        "Северную Двину. Строительство моста продолжалось почти четыре года и обошлось "
        "областному бюджету в двенадцать миллиардов рублей.",
        "По словам губернатора, новый мост позволит разгрузить центр города, где в часы пик "
        "образуются многокилометровые пробки. Ежедневно по нему смогут проезжать до сорока "
        "тысяч автомобилей.",
        "Жители соседних районов встретили новость с воодушевлением: раньше дорога до "
        "областной больницы занимала у них больше часа, теперь путь сократится вдвое.",
        "В ближайшие месяцы на мосту установят освещение и камеры наблюдения, а весной "
        "откроют пешеходную дорожку с видом на реку.",
    ),
    nav=("Главная", "Новости", "Экономика", "Спорт", "Культура", "Погода"),
    cookie="Мы используем файлы cookie. Продолжая пользоваться сайтом, вы соглашаетесь с этим.",
    related=(
        "Мэрия объявила конкурс на ремонт набережной",
        "Синоптики обещают раннюю весну",
        "Как изменится расписание автобусов",
    ),
    comments=(
        "Наконец-то дождались, теперь до работы буду добираться гораздо быстрее обычного.",
        "Посмотрим, сколько простоит этот мост без ремонта, у нас всегда так бывает.",
    ),
    footer="© 2026 Северный вестник. Все права защищены.",
)

KOREAN = Article(
    lang="ko",
    site="한빛일보",
    title="부산 해안가에 새로운 해양 박물관 개관",
    author="김민준",
    published="2026-04-01T10:00:00+09:00",
    paragraphs=(
        "부산 해운대 해안가에 새로운 해양 박물관이 1일 문을 열었다. 박물관은 지상 5층 규모로 "
        "바다 생태계와 항구 도시의 역사를 한눈에 볼 수 있도록 꾸며졌다.",
        "박물관 측은 개관 첫 주에만 약 3만 명의 관람객이 찾을 것으로 예상하고 있다. 특히 "
        "어린이를 위한 체험 공간과 대형 수족관이 큰 관심을 끌고 있다.",
        "시 관계자는 이번 박물관 개관이 지역 관광 산업에 큰 도움이 될 것이라며 앞으로 "
        "다양한 국제 전시도 유치할 계획이라고 밝혔다.",
        "관람료는 성인 기준 만 원이며, 매주 월요일은 휴관한다. 자세한 내용은 박물관 "
        "누리집에서 확인할 수 있다.",
    ),
    nav=("홈", "정치", "경제", "사회", "문화", "스포츠"),
    cookie="이 사이트는 쿠키를 사용합니다. 계속 이용하시면 쿠키 사용에 동의하는 것으로 간주됩니다.",
    related=(
        "여름 휴가철 해수욕장 안전 수칙",
        "부산 지하철 새 노선 착공",
        "해운대 불꽃축제 일정 발표",
    ),
    comments=(
        "아이들과 꼭 가보고 싶네요. 주말에 사람이 많을 것 같아요. 정말 기대됩니다.",
        "주차장이 좁다는 얘기가 있던데 대중교통을 이용하는 게 좋겠습니다.",
    ),
    footer="Copyright 2026 한빛일보. 무단 전재 및 재배포 금지.",
)


def render(
    article: Article,
    *,
    charset: str | None = "utf-8",
    opengraph: bool = True,
    json_ld: bool = False,
    dated_byline: bool = True,
) -> str:
    """A news page as publishers build them: banner, menu, article, related links, comments."""
    head = [f'<meta charset="{charset}">' if charset else "", f"<title>{article.title}</title>"]
    if opengraph:
        head += [
            f'<meta property="og:title" content="{article.title}">',
            f'<meta property="og:site_name" content="{article.site}">',
            f'<meta property="article:published_time" content="{article.published}">',
            f'<meta name="author" content="{article.author}">',
        ]
    if json_ld:
        data = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": article.title,
            "datePublished": article.published,
            "author": {"@type": "Person", "name": article.author},
            "publisher": {"@type": "Organization", "name": article.site},
        }
        head.append(f'<script type="application/ld+json">{json.dumps(data)}</script>')
    nav = "".join(f'<li><a href="/s/{i}">{item}</a></li>' for i, item in enumerate(article.nav))
    related = "".join(f'<li><a href="/r/{i}">{t}</a></li>' for i, t in enumerate(article.related))
    comments = "".join(
        f'<li class="comment" id="comment-{i}"><div class="comment-author">reader{i}</div>'
        f'<div class="comment-body"><p>{text}</p></div></li>'
        for i, text in enumerate(article.comments)
    )
    body = "".join(f"<p>{p}</p>" for p in article.paragraphs)
    byline_time = (
        f', <time datetime="{article.published}">{article.published[:10]}</time>'
        if dated_byline
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="{article.lang}"><head>{"".join(head)}</head>
<body>
<div id="cookie-banner" class="cookie-consent"><p>{article.cookie}</p><button>OK</button></div>
<header class="site-header"><a class="logo" href="/">{article.site}</a>
<nav class="main-menu"><ul>{nav}</ul></nav></header>
<main>
<article class="post">
<h1 class="entry-title">{article.title}</h1>
<div class="byline">{article.author}{byline_time}</div>
<div class="entry-content">{body}
<div class="related-posts"><h3>Related</h3><ul>{related}</ul></div></div>
</article>
<section id="comments" class="comments-area"><h3>Comments</h3>
<ol class="comment-list">{comments}</ol></section>
</main>
<div id="footer" class="site-footer"><p>{article.footer}</p>
<ul><li><a href="/privacy">Privacy</a></li><li><a href="/about">About us</a></li></ul></div>
</body></html>"""


def assert_article_only(page: ExtractedPage, article: Article) -> None:
    assert page.error is None
    for paragraph in article.paragraphs:
        assert paragraph in page.text
    chrome = (article.cookie, article.footer, *article.comments, *article.related)
    for junk in chrome:
        assert junk not in page.text
    for item in article.nav:
        assert item not in page.text.split("\n")
    assert not page.text.startswith(article.title)  # the headline is in .title, not the body


def test_english_page_gives_article_text_and_opengraph_metadata() -> None:
    page = extract_page(render(ENGLISH).encode(), "https://courier.example/city/tram")
    assert_article_only(page, ENGLISH)
    assert page.title == ENGLISH.title
    assert page.author == ENGLISH.author
    assert page.site_name == ENGLISH.site
    assert page.published == datetime(2026, 3, 14, 8, 30, tzinfo=UTC)
    assert page.language == "en"


PUBLISHED = datetime(2026, 3, 14, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('<meta property="article:published_time" content="2026-03-14T09:30:00+01:00">', PUBLISHED),
        ('<meta name="pubdate" content="Sat, 14 Mar 2026 09:30:00 +0100">', PUBLISHED),
        ('<meta itemprop="datePublished" content="2026-03-14T08:30:00.000+0000">', PUBLISHED),
        (
            '<script type="application/ld+json">{"@graph": [{"@type": "WebSite"}, '
            '{"@type": "NewsArticle", "datePublished": "2026-03-14T08:30:00Z"}]}</script>',
            PUBLISHED,
        ),
        ("", datetime(2026, 3, 14, tzinfo=UTC)),  # only the URL has a date: htmldate finds it
    ],
)
def test_publication_time_comes_as_aware_utc(head: str, expected: datetime) -> None:
    html = render(ENGLISH, opengraph=False, dated_byline=False).replace("</head>", f"{head}</head>")
    page = extract_page(html.encode(), "https://courier.example/2026/03/14/tram.html")
    assert page.published == expected


def test_a_year_the_text_mentions_is_not_the_publication_date() -> None:
    # No date in the feed, the meta tags or the URL: the article is undated (alerted as new),
    # not dated by the year of a treaty it recalls (then it would be "too old" to alert).
    html = render(ENGLISH, opengraph=False, dated_byline=False).replace(
        "</article>",
        "<p>The 1961 treaty was renewed in 2000, officials recalled on Monday.</p></article>",
    )
    page = extract_page(html.encode(), "https://courier.example/news/tram.html")
    assert "1961 treaty" in page.text
    assert page.published is None


def test_korean_page_with_json_ld_metadata() -> None:
    html = render(KOREAN, opengraph=False, json_ld=True).encode()
    page = extract_page(html, "https://hanbit.example/news/1")
    assert_article_only(page, KOREAN)
    assert page.title == KOREAN.title
    assert page.author == KOREAN.author
    assert page.site_name == KOREAN.site
    assert page.published == datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
    assert page.language == "ko"


def test_korean_page_in_euc_kr_declared_by_http_header() -> None:
    html = render(KOREAN, charset=None).encode("euc-kr")
    page = extract_page(html, "https://hanbit.example/news/1", "text/html; charset=EUC-KR")
    assert_article_only(page, KOREAN)
    assert page.language == "ko"


def test_russian_windows_1251_page_with_meta_charset() -> None:
    html = render(RUSSIAN, charset="windows-1251").encode("cp1251")
    page = extract_page(html, "https://vestnik.example/most", "text/html")
    assert_article_only(page, RUSSIAN)
    assert page.title == RUSSIAN.title
    assert page.site_name == RUSSIAN.site
    assert page.language == "ru"
    assert page.published == datetime(2026, 2, 3, 9, 0, tzinfo=UTC)


def test_http_charset_wins_over_a_wrong_meta_charset() -> None:
    html = render(RUSSIAN, charset="windows-1251").encode("koi8-r")
    page = extract_page(html, "https://vestnik.example/most", "text/html; charset=koi8-r")
    assert_article_only(page, RUSSIAN)


def test_undeclared_windows_1251_is_detected() -> None:
    text = decode_html(render(RUSSIAN, charset=None).encode("cp1251"), "text/html")
    assert RUSSIAN.paragraphs[0] in text


def test_utf8_mislabelled_as_latin1_is_read_as_utf8() -> None:
    # Every byte of this UTF-8 text is also valid windows-1252, so only the UTF-8 check saves it.
    html = '<html><meta charset="iso-8859-1"><p>Élysée: café, déjà vu – «réunion»</p>'
    decoded = decode_html(html.encode(), "text/html; charset=ISO-8859-1")
    assert "<p>Élysée: café, déjà vu – «réunion»</p>" in decoded


def test_latin1_label_reads_as_windows_1252() -> None:
    html = "<p>“Déjà vu” – café</p>".encode("cp1252")
    assert "“Déjà vu” – café" in decode_html(html, "text/html; charset=iso-8859-1")


def test_utf16_page_with_bom_is_read_not_refused_as_binary() -> None:
    html = render(KOREAN, charset="windows-1251").encode("utf-16")  # BOM first, then NUL bytes
    page = extract_page(html, "https://hanbit.example/news/1", "text/html; charset=iso-8859-1")
    assert_article_only(page, KOREAN)


def test_language_falls_back_to_html_lang_when_text_is_too_short() -> None:
    assert detect_language("OK", "ko") == "ko"
    assert detect_language(RUSSIAN.paragraphs[0], "en") == "ru"


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"", "text/html", "empty page"),
        (b" \n\t ", "text/html", "empty page"),
        (random.Random(7).randbytes(50_000), None, "binary"),
        (b"\x89PNG\r\n\x1a\n" + b"<html>" * 10, "image/png", "not an HTML page"),
        (b"<html><body><p>ok</p>\x00\x00\x01\x02</body></html>", "text/html", "binary"),
        (b"plain words, no markup", "text/plain", "not an HTML page"),
    ],
)
def test_junk_gives_an_error_not_an_exception(
    body: bytes, content_type: str | None, reason: str
) -> None:
    page = extract_page(body, "https://junk.example/", content_type)
    assert page.text == ""
    assert page.error is not None
    assert reason in page.error


def test_page_of_chrome_only_has_no_article_text() -> None:
    html = render(ENGLISH).replace("".join(f"<p>{p}</p>" for p in ENGLISH.paragraphs), "")
    page = extract_page(html.encode(), "https://courier.example/empty")
    assert page.text == ""
    assert page.error == "no article text found"
    assert page.title == ENGLISH.title  # what metadata there is still comes back


def test_deeply_nested_markup_does_not_raise() -> None:
    html = b"<html><body>" + b"<div><span>" * 60_000 + b"lost" + b"</span></div>" * 60_000
    started = time.perf_counter()
    page = extract_page(html + b"</body></html>", "https://deep.example/")
    assert page.text == ""
    assert page.error
    assert time.perf_counter() - started < 10


def test_huge_page_is_cut_before_extraction() -> None:
    last = f"<p>{ENGLISH.paragraphs[-1]}</p>"
    padding = '<script>var blob = "' + "x" * extract.MAX_HTML_BYTES + '";</script>'
    late = "<p>" + "This sentence sits beyond the size cap and must not appear. " * 5 + "</p>"
    html = render(ENGLISH).replace(last, f"{last}{padding}{late}").encode()
    assert len(html) > extract.MAX_HTML_BYTES
    page = extract_page(html, "https://courier.example/huge")
    assert ENGLISH.paragraphs[0] in page.text
    assert "beyond the size cap" not in page.text


def test_page_with_too_many_elements_keeps_its_beginning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract, "MAX_ELEMENTS", 400)
    last = f"<p>{ENGLISH.paragraphs[-1]}</p>"
    filler = "<span></span>" * 1000
    late = "<p>" + "A paragraph written after a thousand elements of filler text. " * 5 + "</p>"
    html = render(ENGLISH).replace(last, f"{last}{filler}{late}")
    page = extract_page(html.encode(), "https://courier.example/long")
    assert ENGLISH.paragraphs[0] in page.text
    assert "after a thousand elements" not in page.text


def test_result_pickles_and_runs_in_a_process_pool() -> None:
    html = render(ENGLISH).encode()
    with ProcessPoolExecutor(max_workers=1, initializer=warm_up) as pool:
        page = pool.submit(extract_page, html, "https://courier.example/city/tram").result()
    assert page == extract_page(html, "https://courier.example/city/tram")
    assert pickle.loads(pickle.dumps(page)) == page
    assert ENGLISH.paragraphs[2] in page.text


def test_metric_matches_the_benchmark_definition() -> None:
    perfect = metric.page_counts("one two three four five", "one two three four five")
    assert (perfect.tp, perfect.fp, perfect.fn) == (1.0, 0.0, 0.0)
    half = metric.page_counts("a b c d e", "a b c d x y z w")
    # truth shingles: abcd, bcde; predicted: abcd, bcdx, cdxy, dxyz, xyzw -> tp 1, fp 4, fn 1
    assert (half.tp, half.fp, half.fn) == pytest.approx((1 / 6, 4 / 6, 1 / 6))
    score = metric.score([perfect, half])
    assert score.precision == pytest.approx((1 + 1 / 5) / 2)
    assert score.recall == pytest.approx((1 + 1 / 2) / 2)


@pytest.mark.skipif(not DATA_DIR.is_dir(), reason="../shared/data/extraction-dev is absent")
def test_f1_on_real_pages_is_at_least_trafilatura_alone() -> None:
    pages = list(metric.load_dev_pages(DATA_DIR))
    assert len(pages) >= 90
    ours = {p.id: extract_page(p.html, p.url).text for p in pages}
    plain = {p.id: trafilatura.extract(p.html, include_comments=False) or "" for p in pages}
    truth = {p.id: p.body for p in pages}
    our_score = metric.evaluate(truth, ours)
    plain_score = metric.evaluate(truth, plain)
    assert our_score.f1 >= plain_score.f1
    assert our_score.f1 >= 0.97


def test_detect_false_leaves_the_language_to_the_caller() -> None:
    html = render(RUSSIAN, charset="windows-1251").encode("cp1251")
    page = extract_page(html, "https://vestnik.example/most", "text/html", detect=False)
    assert (page.language, page.html_lang) == (None, "ru")
    detected = replace(page, language=detect_language(page.text, page.html_lang))
    assert detected == extract_page(html, "https://vestnik.example/most", "text/html")
    assert detected.language == "ru"


def test_compact_language_model_classifies_as_py3langid_does() -> None:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from monitor import language

    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ours = language._identifier()
    assert isinstance(ours.tk_nextmove, memoryview)  # the compact loader was used
    texts = [p for a in (ENGLISH, RUSSIAN, KOREAN) for p in (a.title, *a.paragraphs, a.cookie)]
    if DATA_DIR.is_dir():
        texts += [p.body[:500] for p in metric.load_dev_pages(DATA_DIR)]
    texts += ["", "12345", "OK"]
    assert [ours.classify(t) for t in texts] == [reference.classify(t) for t in texts]


def test_full_cascade_only_where_the_fast_text_is_short_or_odd() -> None:
    def fast(html: str) -> Document:
        doc = trafilatura.bare_extraction(
            html, include_comments=False, favor_precision=True, fast=True
        )
        assert isinstance(doc, Document)
        return doc

    long_article = replace(ENGLISH, paragraphs=ENGLISH.paragraphs * 3)
    assert not extract._wants_full_cascade(fast(render(long_article)))
    assert extract._wants_full_cascade(
        fast(render(ENGLISH).replace("".join(f"<p>{p}</p>" for p in ENGLISH.paragraphs[1:]), ""))
    )  # one short paragraph
    table = (
        "<table>" + "".join(f"<tr><td>{p}</td></tr>" for p in long_article.paragraphs) + "</table>"
    )
    as_table = render(long_article).replace(
        "".join(f"<p>{p}</p>" for p in long_article.paragraphs), table
    )
    assert extract._wants_full_cascade(fast(as_table))  # no paragraph text: a table layout


BYLINE_PAGES = {
    "none": "<div class='story'><p>Text of the story.</p></div>",
    "byline": "<p class='byline'>By Ann Lee <time>today</time></p>",
    "author element": "<author>Ann Lee</author>",
    "rel me": "<a href='/x'>Ann Lee<rel>me</rel></a>",
    "data-testid": "<div data-testid='AuthorCard'>Bo Chen</div>",
    "entity in class": "<span class='&#97;uthor'>Cy Diaz</span>",
    "pruned": "<div class='sidebar'><span class='author'>Not Him</span></div>",
    "writer id": "<span id='writerX' class='writer'>Di Eze</span>",
}


def _tree(body: str) -> HtmlElement:
    tree = load_html(f"<html><head><title>T</title></head><body>{body}</body></html>")
    assert tree is not None
    return tree


@pytest.mark.parametrize("body", BYLINE_PAGES.values(), ids=BYLINE_PAGES.keys())
def test_byline_is_what_trafilatura_extract_author_finds(body: str) -> None:
    expected = extract._clean(extract_author(_tree(body)))
    assert extract._byline(_tree(body)) == expected
    assert expected or body == BYLINE_PAGES["none"] or body == BYLINE_PAGES["pruned"]


def test_page_without_byline_attributes_is_not_searched() -> None:
    assert not extract._may_have_byline(_tree(BYLINE_PAGES["none"]))
    assert all(extract._may_have_byline(_tree(b)) for k, b in BYLINE_PAGES.items() if k != "none")
    assert extract._BYLINE_WORDS_CURRENT  # trafilatura's author XPaths are the ones read


@pytest.mark.skipif(not DATA_DIR.is_dir(), reason="../shared/data/extraction-dev is absent")
def test_byline_is_what_extract_author_finds_on_real_pages() -> None:
    for page in metric.load_dev_pages(DATA_DIR):
        html = decode_html(page.html)
        assert extract._byline(_tree_of(html)) == extract._clean(extract_author(_tree_of(html)))


def _tree_of(html: str) -> HtmlElement:
    tree = load_html(html)
    assert tree is not None
    return tree
