"""Content for the newsroom test server: feed entries, feed documents and article pages.

Everything here is pure (no sockets): it builds bytes and strings that `tests.newsroom` serves.
Article pages imitate real news sites (navigation, cookie banner, sidebar, related stories,
comments, footer, JSON-LD / OpenGraph metadata) around one clear `<article>` body, in English,
Russian and Korean, generated deterministically from a seed.
"""

from __future__ import annotations

import gzip
import html
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

FeedFormat = Literal["rss", "atom", "rdf", "json"]
FEED_FORMATS: tuple[FeedFormat, ...] = ("rss", "atom", "rdf", "json")
FEED_CONTENT_TYPES: dict[str, str] = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "rdf": "application/rdf+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
HTML_TYPE = "text/html; charset=utf-8"
LANGUAGES = ("en", "ru", "ko")


@dataclass(frozen=True)
class Entry:
    """One feed entry as a publisher would write it. `link` may be relative or None."""

    title: str = ""
    link: str | None = None
    guid: str | None = None
    summary: str | None = None
    content: str | None = None  # HTML
    published: datetime | None = None
    updated: datetime | None = None
    author: str | None = None
    categories: tuple[str, ...] = ()


# --------------------------------------------------------------------------- feeds


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _rfc822(when: datetime) -> str:
    return format_datetime(_utc(when), usegmt=True)


def _iso(when: datetime) -> str:
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def _x(text: str) -> str:
    """Escape text for XML element content and attributes."""
    return html.escape(text, quote=True)


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _tag(name: str, text: str | None, attrs: str = "") -> str:
    return "" if text is None else f"<{name}{attrs}>{_x(text)}</{name}>"


@dataclass(frozen=True)
class FeedMeta:
    title: str
    site_url: str
    feed_url: str
    description: str = "Latest news"
    language: str | None = "en"
    updated: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))


def render_feed(fmt: FeedFormat, meta: FeedMeta, entries: Sequence[Entry]) -> bytes:
    """The feed document in one of the four formats, UTF-8 encoded."""
    renderers = {"rss": _rss, "atom": _atom, "rdf": _rdf, "json": _json_feed}
    try:
        renderer = renderers[fmt]
    except KeyError:
        raise ValueError(f"unknown feed format {fmt!r}; use one of {FEED_FORMATS}") from None
    return renderer(meta, entries).encode("utf-8")


def _rss_item(e: Entry) -> str:
    parts = [_tag("title", e.title), _tag("link", e.link)]
    if e.guid is not None:
        permalink = "true" if e.guid == e.link else "false"
        parts.append(_tag("guid", e.guid, f' isPermaLink="{permalink}"'))
    if e.published is not None:
        parts.append(_tag("pubDate", _rfc822(e.published)))
    parts.append(_tag("dc:creator", e.author))
    parts.extend(_tag("category", c) for c in e.categories)
    parts.append(_tag("description", e.summary))
    if e.content is not None:
        parts.append(f"<content:encoded>{_cdata(e.content)}</content:encoded>")
    return "<item>" + "".join(parts) + "</item>"


def _rss(meta: FeedMeta, entries: Sequence[Entry]) -> str:
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">'
        f"<channel>{_tag('title', meta.title)}{_tag('link', meta.site_url)}"
        f"{_tag('description', meta.description)}{_tag('language', meta.language)}"
        f'<atom:link href="{_x(meta.feed_url)}" rel="self" type="application/rss+xml"/>'
        f"{_tag('lastBuildDate', _rfc822(meta.updated))}"
    )
    return head + "\n".join(_rss_item(e) for e in entries) + "</channel></rss>\n"


def _atom_entry(e: Entry, fallback: datetime) -> str:
    parts = [_tag("title", e.title)]
    if e.link is not None:
        parts.append(f'<link rel="alternate" type="text/html" href="{_x(e.link)}"/>')
    parts.append(_tag("id", e.guid))
    if e.published is not None:
        parts.append(_tag("published", _iso(e.published)))
    parts.append(_tag("updated", _iso(e.updated or e.published or fallback)))
    if e.author is not None:
        parts.append(f"<author>{_tag('name', e.author)}</author>")
    parts.extend(f'<category term="{_x(c)}"/>' for c in e.categories)
    parts.append(_tag("summary", e.summary, ' type="text"'))
    parts.append(_tag("content", e.content, ' type="html"'))
    return "<entry>" + "".join(parts) + "</entry>"


def _atom(meta: FeedMeta, entries: Sequence[Entry]) -> str:
    lang = f' xml:lang="{_x(meta.language)}"' if meta.language else ""
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom"{lang}>{_tag("title", meta.title)}'
        f"{_tag('subtitle', meta.description)}"
        f'<link rel="alternate" type="text/html" href="{_x(meta.site_url)}"/>'
        f'<link rel="self" type="application/atom+xml" href="{_x(meta.feed_url)}"/>'
        f"{_tag('id', meta.feed_url)}{_tag('updated', _iso(meta.updated))}"
    )
    body = "\n".join(_atom_entry(e, meta.updated) for e in entries)
    return head + body + "</feed>\n"


def _rdf(meta: FeedMeta, entries: Sequence[Entry]) -> str:
    def about(e: Entry) -> str:
        ref = e.link or e.guid
        return f' rdf:about="{_x(ref)}"' if ref else ""

    seq = "".join(f'<rdf:li rdf:resource="{_x(e.link or e.guid or "")}"/>' for e in entries)
    items = []
    for e in entries:
        parts = [_tag("title", e.title), _tag("link", e.link), _tag("description", e.summary)]
        if e.published is not None:
            parts.append(_tag("dc:date", _iso(e.published)))
        parts.append(_tag("dc:creator", e.author))
        if e.content is not None:
            parts.append(f"<content:encoded>{_cdata(e.content)}</content:encoded>")
        items.append(f"<item{about(e)}>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f'<channel rdf:about="{_x(meta.feed_url)}">{_tag("title", meta.title)}'
        f"{_tag('link', meta.site_url)}{_tag('description', meta.description)}"
        f"{_tag('dc:language', meta.language)}<items><rdf:Seq>{seq}</rdf:Seq></items></channel>"
        + "\n".join(items)
        + "</rdf:RDF>\n"
    )


def _json_feed(meta: FeedMeta, entries: Sequence[Entry]) -> str:
    items = []
    for e in entries:
        item: dict[str, object] = {"id": e.guid, "url": e.link, "title": e.title}
        item["summary"] = e.summary
        item["content_html"] = e.content
        if e.content is None and e.summary is not None:
            item["content_text"] = e.summary  # JSON Feed needs some content
        if e.published is not None:
            item["date_published"] = _iso(e.published)
        if e.updated is not None:
            item["date_modified"] = _iso(e.updated)
        if e.author is not None:
            item["authors"] = [{"name": e.author}]
        if e.categories:
            item["tags"] = list(e.categories)
        items.append({k: v for k, v in item.items() if v is not None})
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": meta.title,
        "home_page_url": meta.site_url,
        "feed_url": meta.feed_url,
        "description": meta.description,
        "language": meta.language,
        "items": items,
    }
    return json.dumps({k: v for k, v in doc.items() if v is not None}, ensure_ascii=False)


# --------------------------------------------------------------------------- hostile feeds

HostileKind = Literal[
    "empty",
    "malformed",
    "billion_laughs",
    "external_entity",
    "local_file_entity",
    "huge",
    "duplicate_guids",
    "bad_links",
    "future_dates",
]
HOSTILE_KINDS: tuple[HostileKind, ...] = (
    "empty",
    "malformed",
    "billion_laughs",
    "external_entity",
    "local_file_entity",
    "huge",
    "duplicate_guids",
    "bad_links",
    "future_dates",
)
XXE_PROBE_PATH = "/xxe-probe"  # an external entity points here: a request to it is a leak


def hostile_feed(kind: HostileKind, base_url: str) -> bytes:
    """RSS crafted to hurt a parser or the code behind it (see HOSTILE_KINDS)."""
    meta = FeedMeta(title=f"Hostile: {kind}", site_url=base_url + "/", feed_url=base_url + "/h")

    def item(i: int, **changes: Any) -> Entry:
        entry = Entry(
            title=f"Item {i}",
            link=f"{base_url}/h/{i}",
            guid=f"h-{i}",
            summary=f"Summary {i}",
            published=datetime(2026, 1, 1, tzinfo=UTC) - timedelta(minutes=i),
        )
        return replace(entry, **changes)

    if kind == "empty":
        return render_feed("rss", meta, [])
    if kind == "huge":
        return render_feed("rss", meta, [item(i) for i in range(20_000)])
    if kind == "duplicate_guids":
        return render_feed("rss", meta, [item(i, guid="same-guid") for i in range(5)])
    if kind == "bad_links":
        links = ["javascript:alert(1)", "data:text/html,<b>x</b>", "/relative/3", "", "  "]
        return render_feed("rss", meta, [item(i, link=link) for i, link in enumerate(links)])
    if kind == "future_dates":
        far = datetime(2999, 12, 31, tzinfo=UTC)
        return render_feed("rss", meta, [item(0, published=far), item(1)])
    return _hostile_xml(kind, base_url).encode("utf-8")


def _hostile_xml(kind: HostileKind, base_url: str) -> str:
    channel_head = f"<channel><title>Hostile: {kind}</title><link>{base_url}/</link>"
    good_item = f"<item><title>Fine</title><link>{base_url}/h/0</link><guid>h-0</guid></item>"
    if kind == "malformed":
        # An unescaped &, a tag closed wrongly, then the document simply stops.
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">'
            f"{channel_head}{good_item}<item><title>Tom & Jerry</titl>"
            f"<link>{base_url}/h/1</link></item><item><title>Cut off"
        )
    if kind == "billion_laughs":
        levels = ['<!ENTITY lol0 "lol">'] + [
            f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
        ]
        doctype = "<!DOCTYPE rss [" + "".join(levels) + "]>"
        title = "&lol9;"
    elif kind == "external_entity":
        doctype = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{base_url}{XXE_PROBE_PATH}">]>'
        title = "&xxe;"
    elif kind == "local_file_entity":
        doctype = '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        title = "&xxe;"
    else:
        raise ValueError(f"unknown hostile feed kind {kind!r}; use one of {HOSTILE_KINDS}")
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{doctype}<rss version="2.0">{channel_head}'
        f"<item><title>{title}</title><link>{base_url}/h/1</link><guid>h-1</guid></item>"
        f"{good_item}</channel></rss>\n"
    )


# --------------------------------------------------------------------------- stories

_WEEKDAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "ru": ["в понедельник", "во вторник", "в среду", "в четверг", "в пятницу"],
    "ko": ["월요일", "화요일", "수요일", "목요일", "금요일"],
}
_PLACES = {
    "en": ["Brussels", "Nairobi", "Lisbon", "Osaka", "Denver", "Santiago", "Helsinki",
           "Melbourne", "Vancouver", "Warsaw", "Marseille", "Porto Alegre"],
    "ru": ["Казань", "Новосибирск", "Екатеринбург", "Калининград", "Владивосток", "Самара",
           "Томск", "Мурманск", "Иркутск", "Пермь"],
    "ko": ["부산", "대구", "광주", "대전", "울산", "수원", "청주", "전주", "포항", "제주"],
}  # fmt: skip
_ORGS = {
    "en": ["the city council", "the central bank", "the transport ministry", "a regional utility",
           "the port authority", "the national weather service", "the university hospital",
           "a coalition of farmers", "the football federation", "the energy regulator"],
    "ru": ["Городская дума", "Центральный банк", "Министерство транспорта", "Региональная энергосеть",
           "Администрация порта", "Гидрометцентр", "Областная больница", "Союз фермеров",
           "Федерация футбола", "Энергетический регулятор"],
    "ko": ["시의회", "중앙은행", "국토교통부", "지역 전력공사", "항만공사", "기상청", "대학병원",
           "농민 연합", "축구협회", "에너지 규제 당국"],
}  # fmt: skip
_TOPICS = {
    "en": ["a new tram line", "water prices", "the harbour expansion", "a heatwave warning",
           "the hospital budget", "grain exports", "the stadium renovation", "electricity tariffs",
           "a data breach at the tax office", "the bridge repairs", "school meal subsidies",
           "a shortage of bus drivers"],
    "ru": ["новая линия трамвая", "тарифы на воду", "расширение порта", "предупреждение о жаре",
           "бюджет больницы", "экспорт зерна", "реконструкция стадиона", "тарифы на электричество",
           "утечка данных налоговой службы", "ремонт моста", "школьное питание",
           "нехватка водителей автобусов"],
    "ko": ["새 트램 노선", "수도 요금", "항만 확장", "폭염 경보", "병원 예산", "곡물 수출",
           "경기장 보수", "전기 요금", "세무서 개인정보 유출", "교량 보수", "학교 급식 지원",
           "버스 기사 부족"],
}  # fmt: skip
_FIRST = {
    "en": ["Maria", "James", "Aisha", "Tomas", "Priya", "Daniel", "Elena", "Kwame", "Sofia", "Liam"],
    "ru": ["Анна", "Дмитрий", "Ольга", "Сергей", "Мария", "Алексей", "Наталья", "Игорь"],
    "ko": ["김", "이", "박", "최", "정", "강", "조", "윤"],
}  # fmt: skip
_LAST = {
    "en": ["Novak", "Okafor", "Lindqvist", "Moreau", "Hartmann", "Silva", "Tanaka", "Byrne"],
    "ru": ["Петрова", "Соколов", "Кузнецова", "Морозов", "Волкова", "Лебедев", "Зайцева"],
    "ko": ["민준", "서연", "지호", "하은", "도윤", "수아", "예준", "지우"],
}  # fmt: skip
_SENTENCES = {
    "en": [
        "{Org} in {place} said on {day} that {topic} would cost about {n} million euros, "
        "more than officials had estimated last year.",
        "Officials in {place} expect {topic} to come up again at a public meeting next month, "
        "according to {person}, who has followed the issue for years.",
        "Residents told reporters that {topic} had already changed how they plan their week.",
        "{Person}, a spokesperson for {org}, said the figures would be published in full by {day}.",
        "The debate over {topic} has divided the region since the spring, when {n} households "
        "signed a petition asking for a review.",
        "Critics argue that {org} moved too quickly and ignored warnings about {topic}.",
        "A report seen by this newspaper puts the number of people affected at roughly {n},000.",
        "Supporters say {topic} will pay for itself within {k} years if demand keeps growing.",
        "Independent analysts in {place} cautioned that the estimate depends on interest rates.",
        "{Org} declined to say whether it had considered alternatives to {topic}.",
        "Local businesses near the site reported a drop of {k} percent in customers last quarter.",
        "The final decision is expected before the end of the year, {person} added.",
    ],
    "ru": [
        "Представители организации «{org}» в городе {place} {day} заявили, что проект "
        "«{topic}» обойдётся примерно в {n} млн рублей.",
        "По словам эксперта {person}, тема «{topic}» снова будет обсуждаться на публичных "
        "слушаниях в следующем месяце.",
        "Жители рассказали журналистам, что ситуация вокруг темы «{topic}» уже изменила их планы.",
        "{Person}, пресс-секретарь организации «{org}», пообещал опубликовать полные данные.",
        "Спор вокруг темы «{topic}» разделил регион ещё весной, когда {n} семей подписали петицию.",
        "Критики считают, что организация «{org}» действовала слишком поспешно.",
        "Согласно докладу, с которым ознакомилась редакция, затронуты около {n} тысяч человек.",
        "Сторонники уверены, что проект «{topic}» окупится за {k} лет при росте спроса.",
        "Независимые аналитики в городе {place} предупредили, что оценка зависит от ставок.",
        "В организации «{org}» отказались сообщить, рассматривались ли альтернативы.",
        "Предприниматели рядом с площадкой сообщили о падении выручки на {k} процентов.",
        "Окончательное решение ожидается до конца года, добавил {person}.",
    ],
    "ko": [
        "{place}의 {org} 측은 {day} {topic} 사업에 약 {n}억 원이 들 것이라고 밝혔다.",
        "{person} 전문가에 따르면 {topic} 문제는 다음 달 공청회에서 다시 논의될 예정이다.",
        "주민들은 {topic} 문제 때문에 이미 생활 계획이 바뀌었다고 기자에게 말했다.",
        "{org} 대변인 {person} 씨는 전체 수치를 곧 공개하겠다고 말했다.",
        "{topic} 논란은 봄부터 지역 사회를 갈라놓았으며 {n}가구가 재검토 청원에 서명했다.",
        "비판론자들은 {org} 측이 경고를 무시하고 너무 서둘렀다고 지적했다.",
        "본지가 입수한 보고서에 따르면 영향을 받는 인원은 약 {n}00명에 이른다.",
        "지지자들은 수요가 계속 늘면 {topic} 사업이 {k}년 안에 수익을 낼 것이라고 본다.",
        "{place}의 독립 분석가들은 이 추정치가 금리에 따라 달라질 수 있다고 경고했다.",
        "{org} 측은 대안을 검토했는지에 대해서는 답변을 거부했다.",
        "현장 인근 상인들은 지난 분기 손님이 {k}퍼센트 줄었다고 전했다.",
        "최종 결정은 연말 이전에 나올 것으로 보인다고 {person} 씨는 덧붙였다.",
    ],
}
_TITLES = {
    "en": ["{Place} weighs {topic} as costs rise", "{Org} backs {topic} after long debate",
           "What {topic} means for {place}", "Questions grow over {topic} in {place}"],
    "ru": ["{place}: проект «{topic}» дорожает", "«{org}» поддержала проект «{topic}»",
           "Что означает «{topic}» для города {place}", "Вопросы вокруг темы «{topic}» множатся"],
    "ko": ["{place}, {topic} 비용 증가에 고심", "{org}, 긴 논쟁 끝에 {topic} 지지",
           "{place} 시민에게 {topic} 문제란", "{place}서 {topic} 둘러싼 의문 커져"],
}  # fmt: skip
_COMMENTS = {
    "en": ["Nobody on our street was ever asked about this, typical.",
           "Great reporting, but where is the follow-up on last winter's promises?",
           "I moved here twelve years ago and the buses have never been on time.",
           "Can someone explain why the council keeps hiring the same consultants?"],
    "ru": ["Нас на нашей улице никто ни о чём не спрашивал, как обычно.",
           "Хорошая статья, но где продолжение про прошлогодние обещания?",
           "Живу здесь двенадцать лет, автобусы ни разу не пришли вовремя.",
           "Кто-нибудь объяснит, почему нанимают одних и тех же консультантов?"],
    "ko": ["우리 동네에는 아무도 의견을 묻지 않았네요, 늘 그렇듯이.",
           "좋은 기사지만 작년 겨울 약속에 대한 후속 보도는 어디 있나요?",
           "여기 산 지 12년인데 버스가 제시간에 온 적이 없습니다.",
           "왜 매번 같은 컨설턴트를 고용하는지 누가 설명 좀 해주세요."],
}  # fmt: skip
_SITE_NAMES = {"en": "The Daily Ledger", "ru": "Вечерний вестник", "ko": "한빛일보"}
_NAV = {
    "en": ["Home", "World", "Politics", "Business", "Technology", "Sport", "Opinion"],
    "ru": ["Главная", "Мир", "Политика", "Экономика", "Технологии", "Спорт", "Мнения"],
    "ko": ["홈", "국제", "정치", "경제", "IT", "스포츠", "오피니언"],
}
_FOOTER = {
    "en": ["About us", "Contact", "Advertise", "Privacy policy", "Terms of use"],
    "ru": ["О нас", "Контакты", "Реклама", "Конфиденциальность", "Условия"],
    "ko": ["회사 소개", "문의", "광고", "개인정보처리방침", "이용약관"],
}
_CHROME: dict[str, dict[str, str]] = {
    "en": {
        "cookie": "We use cookies to personalise content and ads and to analyse our traffic. "
        "By clicking Accept you agree to our use of cookies.",
        "accept": "Accept all", "settings": "Cookie settings", "related": "Related stories",
        "most_read": "Most read", "comments": "Comments", "share": "Share this article",
        "newsletter": "Get our morning briefing in your inbox.", "subscribe": "Subscribe",
        "rights": "All rights reserved.", "by": "By",
    },
    "ru": {
        "cookie": "Мы используем файлы cookie, чтобы персонализировать контент и рекламу. "
        "Нажимая «Принять», вы соглашаетесь с их использованием.",
        "accept": "Принять", "settings": "Настройки cookie", "related": "Читайте также",
        "most_read": "Самое читаемое", "comments": "Комментарии", "share": "Поделиться",
        "newsletter": "Утренняя рассылка главных новостей.", "subscribe": "Подписаться",
        "rights": "Все права защищены.", "by": "Автор:",
    },
    "ko": {
        "cookie": "본 사이트는 맞춤형 콘텐츠와 광고를 위해 쿠키를 사용합니다. "
        "동의를 누르면 쿠키 사용에 동의하는 것으로 간주됩니다.",
        "accept": "모두 동의", "settings": "쿠키 설정", "related": "관련 기사",
        "most_read": "많이 본 뉴스", "comments": "댓글", "share": "기사 공유",
        "newsletter": "아침 뉴스레터를 받아보세요.", "subscribe": "구독",
        "rights": "무단 전재 및 재배포 금지.", "by": "기자",
    },
}  # fmt: skip


@dataclass(frozen=True)
class Story:
    """A generated news article: the text a good extractor should return is `text`."""

    slug: str
    lang: str
    title: str
    paragraphs: tuple[str, ...]
    author: str
    published: datetime
    site_name: str
    section: str
    comments: tuple[str, ...]
    related: tuple[str, ...]  # titles of other stories, shown as links

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)

    @property
    def description(self) -> str:
        first = self.paragraphs[0] if self.paragraphs else ""
        return first if len(first) <= 200 else first[:197].rsplit(" ", 1)[0] + "..."


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _slots(rng: random.Random, lang: str) -> dict[str, str]:
    person = (
        f"{rng.choice(_FIRST[lang])}{rng.choice(_LAST[lang])}"
        if lang == "ko"
        else f"{rng.choice(_FIRST[lang])} {rng.choice(_LAST[lang])}"
    )
    values = {
        "org": rng.choice(_ORGS[lang]),
        "place": rng.choice(_PLACES[lang]),
        "topic": rng.choice(_TOPICS[lang]),
        "day": rng.choice(_WEEKDAYS[lang]),
        "person": person,
        "n": str(rng.randint(12, 980)),
        "k": str(rng.randint(3, 40)),
    }
    values.update({_cap(k): _cap(v) for k, v in list(values.items())})
    return values


def _fill(template: str, slots: dict[str, str]) -> str:
    return template.format(**slots)


def make_title(seed: int, lang: str = "en") -> str:
    """The headline `make_story(seed, lang)` would get."""
    rng = random.Random(f"story-{lang}-{seed}")
    slots = _slots(rng, lang)
    return _fill(rng.choice(_TITLES[lang]), slots)


def make_story(
    seed: int,
    lang: str = "en",
    *,
    title: str | None = None,
    paragraphs: Sequence[str] | None = None,
    published: datetime | None = None,
    author: str | None = None,
    site_name: str | None = None,
) -> Story:
    """A deterministic story for `seed`; pass `title`/`paragraphs` to control the text."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; use one of {LANGUAGES}")
    rng = random.Random(f"story-{lang}-{seed}")
    slots = _slots(rng, lang)  # one person/place/topic per story, so paragraphs hang together
    headline = _fill(rng.choice(_TITLES[lang]), slots)
    byline = _slots(rng, lang)["Person"]  # a reporter, not the person quoted
    if paragraphs is None:
        paragraphs = _paragraphs(rng, lang, slots)
    return Story(
        slug=f"story-{seed}",
        lang=lang,
        title=title if title is not None else headline,
        paragraphs=tuple(paragraphs),
        author=author if author is not None else byline,
        published=published or datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=seed % 500),
        site_name=site_name or _SITE_NAMES[lang],
        section=rng.choice(_NAV[lang][1:]),
        comments=tuple(rng.sample(_COMMENTS[lang], 3)),
        related=tuple(make_title(seed * 7 + i + 1, lang) for i in range(4)),
    )


def _paragraphs(rng: random.Random, lang: str, slots: dict[str, str]) -> list[str]:
    """4-6 paragraphs of 2-3 sentences; no sentence template is used twice in one story."""
    templates = rng.sample(_SENTENCES[lang], len(_SENTENCES[lang]))
    result = []
    for _ in range(rng.randint(4, 6)):
        take = rng.randint(2, 3)
        picks, templates = templates[:take], templates[take:]
        if not picks:
            break
        local = dict(slots, n=str(rng.randint(12, 980)), k=str(rng.randint(3, 40)))
        result.append(" ".join(_fill(s, local) for s in picks))
    return result


def render_article(story: Story, url: str) -> str:
    """A full HTML page for `story`, served at `url`, wrapped in realistic site chrome."""
    c = _CHROME[story.lang]
    e = html.escape
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": story.title,
        "datePublished": _iso(story.published),
        "author": {"@type": "Person", "name": story.author},
        "publisher": {"@type": "Organization", "name": story.site_name},
        "inLanguage": story.lang,
        "mainEntityOfPage": url,
    }
    nav = "".join(
        f'<li><a href="/section/{i}">{e(n)}</a></li>' for i, n in enumerate(_NAV[story.lang])
    )
    paragraphs = "\n".join(f"<p>{e(p)}</p>" for p in story.paragraphs)
    related = "".join(
        f'<li><a href="/related/{i}">{e(t)}</a></li>' for i, t in enumerate(story.related)
    )
    most_read = "".join(
        f'<li><a href="/popular/{i}">{e(t)}</a></li>' for i, t in enumerate(story.related[::-1])
    )
    comments = "".join(
        f'<div class="comment"><span class="comment-author">{e(_comment_author(i))}</span>'
        f'<p class="comment-body">{e(text)}</p></div>'
        for i, text in enumerate(story.comments)
    )
    footer = "".join(f'<a href="/about/{i}">{e(t)}</a> ' for i, t in enumerate(_FOOTER[story.lang]))
    date = _iso(story.published)
    return f"""<!DOCTYPE html>
<html lang="{story.lang}"><head><meta charset="utf-8">
<title>{e(story.title)} | {e(story.site_name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="{e(story.description)}">
<meta name="author" content="{e(story.author)}">
<meta property="og:type" content="article"><meta property="og:title" content="{e(story.title)}">
<meta property="og:site_name" content="{e(story.site_name)}"><meta property="og:url" content="{e(url)}">
<meta property="og:description" content="{e(story.description)}">
<meta property="article:published_time" content="{date}">
<link rel="canonical" href="{e(url)}"><link rel="stylesheet" href="/static/site.css">
<script type="application/ld+json">{json.dumps(ld, ensure_ascii=False)}</script>
<script>window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments)}}</script>
</head><body>
<div id="cookie-banner" class="cookie-consent"><p>{e(c["cookie"])}</p>
<button>{e(c["accept"])}</button> <button>{e(c["settings"])}</button></div>
<header class="site-header"><a class="logo" href="/">{e(story.site_name)}</a>
<nav class="main-nav"><ul>{nav}</ul></nav></header>
<div class="ad-slot">Advertisement</div>
<main><div class="layout">
<article class="story">
<div class="breadcrumbs"><a href="/">{e(_NAV[story.lang][0])}</a> / <a href="/section">{e(story.section)}</a></div>
<h1>{e(story.title)}</h1>
<div class="byline">{e(c["by"])} <a rel="author" href="/authors/1">{e(story.author)}</a>
<time datetime="{date}">{story.published.strftime("%Y-%m-%d %H:%M")}</time></div>
<div class="story-body">
{paragraphs}
</div>
<div class="share"><span>{e(c["share"])}</span> <a href="/share/fb">Facebook</a> <a href="/share/x">X</a></div>
</article>
<aside class="sidebar"><h3>{e(c["most_read"])}</h3><ol>{most_read}</ol>
<div class="newsletter"><p>{e(c["newsletter"])}</p><button>{e(c["subscribe"])}</button></div></aside>
</div>
<section class="related"><h2>{e(c["related"])}</h2><ul>{related}</ul></section>
<section id="comments" class="comments"><h2>{e(c["comments"])}</h2>{comments}</section>
</main>
<footer class="site-footer"><nav>{footer}</nav><p>&copy; 2026 {e(story.site_name)}. {e(c["rights"])}</p></footer>
<script src="/static/analytics.js" async></script>
</body></html>
"""


def _comment_author(index: int) -> str:
    return ["river_fox", "old_harbour", "M.K.", "citizen42"][index % 4]


def story_entry(story: Story, link: str | None, *, guid: str | None = None) -> Entry:
    """The feed entry a publisher would list for `story`."""
    return Entry(
        title=story.title,
        link=link,
        guid=guid,
        summary=story.description,
        published=story.published,
        author=story.author,
        categories=(story.section,),
    )


def generic_homepage(title: str = "Welcome", feed_href: str | None = None) -> str:
    """An HTML front page (no article), optionally advertising a feed with <link rel=alternate>."""
    link = (
        f'<link rel="alternate" type="application/rss+xml" title="RSS" href="{html.escape(feed_href)}">'
        if feed_href
        else ""
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title>{link}</head><body><header><nav><a href='/'>Home</a> <a href='/world'>World</a>"
        "</nav></header><main><h1>Top stories</h1><ul><li><a href='/a'>First</a></li>"
        "<li><a href='/b'>Second</a></li></ul></main><footer>&copy; 2026</footer></body></html>"
    )


# --------------------------------------------------------------------------- real pages


@dataclass(frozen=True)
class RealPage:
    """One page of the extraction-dev benchmark data, with its ground-truth text."""

    id: str
    original_url: str
    path: str  # original path (and query) at which the newsroom serves it
    html: bytes
    expected_text: str

    @property
    def title(self) -> str:
        match = re.search(rb"<title[^>]*>(.*?)</title>", self.html, re.I | re.S)
        raw = match.group(1).decode("utf-8", "replace") if match else ""
        return " ".join(html.unescape(raw).split()) or self.id


def load_real_pages(data_dir: Path) -> list[RealPage]:
    """Pages of `<data_dir>/extraction-dev/` (`data_dir` = the shared data folder), sorted by id."""
    root = data_dir / "extraction-dev"
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id in sorted(truth):
        record = truth[page_id]
        parts = urlsplit(record["url"])
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = gzip.decompress((root / "html" / f"{page_id}.html.gz").read_bytes())
        pages.append(RealPage(page_id, record["url"], path, body, record["articleBody"]))
    return pages
