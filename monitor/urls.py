"""URL helpers: resolve links, keep only http(s), and canonicalize article URLs.

The canonical form is the identity of an article across feeds, so it must merge
only URLs that name the same page: scheme and host lowercased, default port,
dot segments and fragment dropped, percent-escapes normalized, and known
tracking parameters removed. Other query parameters are kept in order: dropping
one that selects the article (``?id=``, ``?gallery=``) would merge two articles.
courlan's normalizer is not used for this reason: its tracker pattern also
removes parameters such as ``gallery``, ``ref…``, ``session`` or ``*_source``.
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
TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "hsa_", "oly_", "vero_", "at_", "ns_", "itm_")

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


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical form of an http(s) URL, or None for anything that is not one.

    Relative URLs are resolved against ``base``; ``javascript:``, ``data:``,
    ``mailto:`` and other schemes give None.
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
    return urlunsplit((scheme, netloc, path, query, ""))


def host_of(url: str | None) -> str | None:
    """Lowercase host name of an http(s) URL (no port, no trailing dot), else None."""
    resolved = absolute_http_url(url)
    if resolved is None:
        return None
    host = urlsplit(resolved).hostname
    return host.rstrip(".").lower() if host else None


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _canonical_netloc(scheme: str, netloc: str) -> str | None:
    userinfo, _, hostport = netloc.rpartition("@")
    parts = urlsplit(f"//{hostport}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return None
    with contextlib.suppress(UnicodeError):  # hosts IDNA refuses stay as they are
        host = host.encode("idna").decode("ascii")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    hostport = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{userinfo}@{hostport}" if userinfo else hostport


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
