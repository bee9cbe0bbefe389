"""URL helpers: resolve links, keep only http(s), and canonicalize article URLs.

The canonical form is the identity of an article across feeds, so it must merge
only URLs that name the same page: scheme and host lowercased, default port,
dot segments and fragment dropped, percent-escapes normalized, and known
tracking parameters removed. Other query parameters are kept in order: dropping
one that selects the article (``?id=``, ``?gallery=``) would merge two articles.
courlan's normalizer is not used for this reason: its tracker pattern also
removes parameters such as ``gallery``, ``ref…``, ``session`` or ``*_source``.

``keep_anchor=True`` keeps a fragment that names a post on a page holding
several (``/2017/06/26.html#a080605``, live blogs), so that those posts are not
merged into one item; navigation and tracking fragments (``#comments``,
``#more-12``, ``#xtor=RSS-3``) are still dropped.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

_HTTP_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Query parameters that only say where a click came from (lowercase names).
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "ysclid", "twclid", "ttclid", "igshid", "igsh", "mc_cid", "mc_eid", "mkt_tok",
        "_ga", "_gl", "_hsenc", "_hsmi", "_openstat", "srsltid", "li_fat_id", "ocid",
        "cvid", "ncid", "cmpid", "cmp", "icid", "smid", "smtyp", "emc", "xtor",
        "ref_src", "ref_url", "soc_src", "soc_trk", "feedtype", "feedname",
        "guccounter", "guce_referrer", "guce_referrer_sig", "__twitter_impression",
        "rss_source", "spm",
    }
)  # fmt: skip
TRACKING_PREFIXES = (
    "utm_", "mtm_", "pk_", "hsa_", "oly_", "vero_", "at_", "ns_", "itm_", "wt_",
)  # fmt: skip

_JUNK_ANCHOR = re.compile(
    r"^(?:comments?|comment-?\d+|respond|reply|more(?:-\d+)?|disqus_thread|top|content"
    r"|main(?:-?content)?|maincontent|article|story|body|page|share|jump|rss|feed|ref"
    r"|(?:read|continue)[-_]?(?:more|reading)|skip.*|utm_.*|at_.*)$",
    re.IGNORECASE,
)
_PCT_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters left as they are when re-quoting (RFC 3986 reserved + "%").
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = "/?%:@!$&'()*+,;=-._~"


def absolute_http_url(url: str | None, base: str | None = None) -> str | None:
    """``url`` resolved against ``base``, or None unless it is an http(s) URL with a host."""
    if not url:
        return None
    url = url.strip()
    if not url:
        return None
    try:
        resolved = urljoin(base, url) if base else url
        parts = urlsplit(resolved)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return None
    if parts.scheme.lower() not in _HTTP_SCHEMES or not parts.hostname:
        return None
    return resolved


def canonical_url(
    url: str | None, base: str | None = None, *, keep_anchor: bool = False
) -> str | None:
    """The canonical form of an http(s) URL, or None for anything that is not one.

    Relative URLs are resolved against ``base``; ``javascript:``, ``data:``,
    ``mailto:`` and other schemes give None. The fragment is dropped, unless
    ``keep_anchor`` and it looks like the anchor of a post (see the module doc).
    """
    resolved = absolute_http_url(url, base)
    if resolved is None:
        return None
    parts = urlsplit(resolved)
    scheme = parts.scheme.lower()
    netloc = _canonical_netloc(scheme, parts.netloc)
    if netloc is None:
        return None
    path = _normalize_escapes(quote(_remove_dot_segments(parts.path) or "/", safe=_PATH_SAFE))
    query = _clean_query(parts.query)
    fragment = _post_anchor(parts.fragment) if keep_anchor else ""
    return urlunsplit((scheme, netloc, path, query, fragment))


def host_of(url: str | None) -> str | None:
    """Host name of an http(s) URL as canonical URLs spell it: lowercase, IDNA, no port."""
    resolved = absolute_http_url(url)
    if resolved is None:
        return None
    return _ascii_host(urlsplit(resolved).hostname or "") or None


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _post_anchor(fragment: str) -> str:
    """The fragment if it may name one post on a page, else ""."""
    if not fragment or "=" in fragment or "&" in fragment or _JUNK_ANCHOR.match(fragment):
        return ""  # "=" marks tracking or application state, not a place in the page
    return _normalize_escapes(quote(fragment, safe=_QUERY_SAFE))


def _canonical_netloc(scheme: str, netloc: str) -> str | None:
    userinfo, _, hostport = netloc.rpartition("@")
    parts = urlsplit(f"//{hostport}")
    host = _ascii_host(parts.hostname or "")
    if not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    hostport = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{userinfo}@{hostport}" if userinfo else hostport


def _ascii_host(hostname: str) -> str:
    host = hostname.rstrip(".").lower()
    with contextlib.suppress(UnicodeError):  # hosts IDNA refuses stay as they are
        host = host.encode("idna").decode("ascii")
    return host


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, for absolute paths."""
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    return result if result.startswith("/") or not result else "/" + result


def _normalize_escapes(text: str) -> str:
    """Uppercase percent-escapes and decode the ones that stand for unreserved characters."""

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PCT_ESCAPE.sub(fix, text)


def _clean_query(query: str) -> str:
    kept = []
    for pair in query.split("&"):
        if not pair:
            continue
        name = pair.split("=", 1)[0]
        if is_tracking_param(_PCT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)):
            continue
        kept.append(_normalize_escapes(quote(pair, safe=_QUERY_SAFE)))
    return "&".join(kept)
