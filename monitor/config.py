"""The watch config: found, read, validated once, then passed down as a frozen `Config`.

Every problem in a config file is reported at once, each as ``file:line: key: message``.
This is the only module that reads the environment.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

DEFAULT_CONFIG = Path("config/monitor.yaml")
ENV_CONFIG = "MONITOR_CONFIG"
DEFAULT_USER_AGENT = "news-monitor/{version} (+https://github.com/news-monitor/news-monitor)"

# --------------------------------------------------------------------------- value types

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> Any:
    """'15m', '1h30m', '20s', '3d' or a number of seconds -> timedelta."""
    if isinstance(value, timedelta) or value is None:
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15m, 20s, 3d")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = str(value).strip().lower().replace(" ", "")
    if not text:
        raise ValueError("expected a duration such as 15m, 20s, 3d")
    pos, total = 0, 0.0
    for found in _DURATION_RE.finditer(text):
        if found.start() != pos:
            break
        total += float(found.group(1)) * _DURATION_UNITS[found.group(2).lower()]
        pos = found.end()
    if pos != len(text):
        raise ValueError(f"{value!r} is not a duration (use e.g. 90s, 15m, 1h30m, 3d)")
    return timedelta(seconds=total)


def _positive(value: timedelta) -> timedelta:
    if value.total_seconds() <= 0:
        raise ValueError("must be longer than zero")
    return value


_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 10**6,
    "mib": 2**20,
    "gb": 10**9,
    "gib": 2**30,
}


def parse_size(value: Any) -> Any:
    """'10MB', '512KiB' or a number of bytes -> int."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    found = _SIZE_RE.match(str(value).strip())
    if not found:
        raise ValueError(f"{value!r} is not a size (use e.g. 10MB, 512KiB)")
    return int(float(found.group(1)) * _SIZE_UNITS[(found.group(2) or "b").lower()])


def _not_negative(value: timedelta) -> timedelta:
    if value.total_seconds() < 0:
        raise ValueError("must not be negative")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
DurationOrZero = Annotated[
    timedelta, BeforeValidator(parse_duration), AfterValidator(_not_negative)
]
Size = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
NAME_MAX = 200  # characters in a feed, topic or channel name
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]


class _Model(BaseModel):
    # Unknown keys are typos far more often than intent: refuse them, by name.
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- sections


class Defaults(_Model):
    interval: Duration = timedelta(minutes=15)
    timeout: Duration = timedelta(seconds=20)
    jitter: DurationOrZero = timedelta(seconds=30)
    alert_max_age: Duration | None = timedelta(days=3)
    development_window: Duration = timedelta(days=3)


class FetchSettings(_Model):
    user_agent: str | None = None
    max_connections: int = Field(default=20, ge=1, le=1000)
    per_host: int = Field(default=2, ge=1, le=100)
    max_redirects: int = Field(default=5, ge=0, le=20)
    max_body: Size = 10 * 10**6
    article_concurrency: int = Field(default=8, ge=1, le=200)
    # Pages fetched per feed poll; further new entries keep the feed's own text.
    max_articles_per_poll: int = Field(default=200, ge=0, le=100_000)
    # Article links come from third parties; private addresses are refused unless allowed.
    allow_private_networks: bool = False
    backoff_max: Duration = timedelta(hours=6)
    # An HTTP(S) forward proxy for every request ("" = none, so `${HTTPS_PROXY:-}` works).
    proxy: str | None = None
    # Hosts (and their subdomains) reached directly; loopback always is. "*": no proxy at all.
    no_proxy: list[str] = Field(default_factory=list)

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.match(r"^https?://[^\s/@]*@?[^\s/]+/?$", value.strip(), re.IGNORECASE):
            raise ValueError(f"{mask_url_secrets(value)!r} is not an http:// or https:// proxy URL")
        return value.strip()

    @field_validator("no_proxy", mode="before")
    @classmethod
    def _host_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # NO_PROXY's own form: "a.example,b.example"
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    @field_validator("no_proxy")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not re.fullmatch(r"\*|\.?[A-Za-z0-9_.-]+|\[?[0-9A-Fa-f:.]+\]?", host):
                raise ValueError(f"{host!r} is not a host name or address (no scheme, no port)")
        return value


class Feed(_Model):
    name: Name
    url: str
    interval: Duration | None = None
    timeout: Duration | None = None
    enabled: bool = True
    fetch_article: bool = True
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value, re.IGNORECASE):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class Channel(_Model):
    url: str
    mode: Literal["immediate", "digest"] = "immediate"
    schedule: str | None = None  # cron, for digests
    timezone: str = "UTC"
    format: Literal["text", "markdown", "html"] = "text"
    template: str | None = None
    # Delivery: a channel that is down keeps its alerts pending, retried with back-off, this long.
    retry_for: Duration = timedelta(hours=24)
    timeout: Duration = timedelta(seconds=30)  # bound on one send

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field check, not a model one: a bad `timezone:` beside it does not hide its problem
        # (the cron syntax does not depend on the zone).
        if value is None:
            return value
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"bad cron schedule {value!r}: {exc}") from exc
        # Refused like an unknown key: it would do nothing, and the likely wish is a digest.
        if info.data.get("mode") == "immediate":
            raise ValueError(
                "only a digest channel has a schedule: add `mode: digest`, or remove it"
            )
        return value

    @model_validator(mode="after")
    def _digest_needs_schedule(self) -> Channel:
        if self.mode == "digest" and not self.schedule:
            raise ValueError("a digest channel needs a cron `schedule`, e.g. '0 8 * * *'")
        return self


def _channel_from_string(value: Any) -> Any:
    return {"url": value} if isinstance(value, str) else value


ChannelEntry = Annotated[Channel, BeforeValidator(_channel_from_string)]


class Topic(_Model):
    name: Name
    description: str | None = None
    query: str | None = None
    all: list[list[str]] = Field(default_factory=list)
    any: list[str] = Field(default_factory=list)
    none: list[str] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=list)
    languages: list[str] | None = None
    alert_max_age: Duration | None = None
    development_window: Duration | None = None
    alert_on_reports: bool = False
    template: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Topic:
        has_list = bool(self.all or self.any)
        if self.query and has_list:
            raise ValueError("use either `query:` or the list form (all/any/none), not both")
        if not self.query and not has_list:
            raise ValueError("needs a `query:` or an `all:`/`any:` list of terms")
        if any(not group for group in self.all):
            raise ValueError("`all:` has an empty group; every group needs at least one term")
        return self


class Health(_Model):
    notify: list[str] = Field(default_factory=list)
    feed_failing_after: Duration = timedelta(hours=24)
    channel_failing_after: Duration = timedelta(hours=1)


class Retention(_Model):
    drop_text_after: Duration | None = None


_ADDRESS_RE = re.compile(
    r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>\d{1,5})$"
)


def parse_address(text: str) -> tuple[str, int]:
    """'127.0.0.1:9100', 'localhost:9100', '[::1]:9100' -> (host, port); ValueError otherwise."""
    found = _ADDRESS_RE.match(text.strip())
    if not found or not 0 <= int(found.group("port")) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9100)")
    return found.group("v6") or found.group("host"), int(found.group("port"))


class ConfigModel(_Model):
    database: str = "../state/monitor.db"
    defaults: Defaults = Field(default_factory=Defaults)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    feeds: list[Feed] = Field(default_factory=list)
    channels: dict[str, ChannelEntry] = Field(default_factory=dict)
    topics: list[Topic] = Field(default_factory=list)
    health: Health = Field(default_factory=Health)
    retention: Retention = Field(default_factory=Retention)
    http: str | None = None  # "127.0.0.1:8080": /healthz and /metrics
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    heartbeat: str = "../state/heartbeat"
    # Processes for article extraction; None = one per CPU core, 0 = threads in-process.
    workers: int | None = Field(default=None, ge=0, le=64)

    @field_validator("http")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_address(value)  # its ValueError names the problem
        return value


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --------------------------------------------------------------------------- the loaded config


@dataclass(frozen=True)
class Config:
    """A validated config plus where it came from; paths already resolved."""

    path: Path
    model: ConfigModel
    database: Path
    heartbeat: Path
    secrets: frozenset[str] = field(default_factory=frozenset)
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def feeds(self) -> list[Feed]:
        return self.model.feeds

    @property
    def topics(self) -> list[Topic]:
        return self.model.topics

    @property
    def channels(self) -> dict[str, Channel]:
        return self.model.channels

    @property
    def defaults(self) -> Defaults:
        return self.model.defaults

    @property
    def fetch(self) -> FetchSettings:
        return self.model.fetch

    def feed(self, name: str) -> Feed | None:
        return next((f for f in self.model.feeds if f.name == name), None)

    def feed_interval(self, feed: Feed) -> timedelta:
        return feed.interval or self.model.defaults.interval

    def feed_timeout(self, feed: Feed) -> timedelta:
        return feed.timeout or self.model.defaults.timeout

    def mask(self, text: str) -> str:
        """Hide secrets (values taken from the environment, URL passwords) in text."""
        return mask_secrets(text, self.secrets)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Hide the given secrets, and the password of any URL, in text."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return mask_url_secrets(text)


def _secrets_worth_masking(found: Iterable[str]) -> frozenset[str]:
    # Shorter values (a port, "1") would mask every occurrence of themselves in unrelated text.
    return frozenset(s for s in found if len(s) >= 4)


_URL_PASSWORD_RE = re.compile(
    r"([a-z][a-z0-9+.-]*://[^:/?#@\s]*:)([^@\s/?#]+)(@)", re.IGNORECASE
)  # the authority ends at / ? #: a port before "?from=a@b" is no password


def mask_url_secrets(text: str) -> str:
    """Mask the password part of any ``scheme://user:password@host`` in text."""
    return _URL_PASSWORD_RE.sub(r"\1***\3", text)


def resolve_config_path(cli_path: str | os.PathLike[str] | None) -> Path:
    """--config, else $MONITOR_CONFIG, else config/monitor.yaml under the current folder."""
    if cli_path:
        return Path(cli_path)
    env = os.environ.get(ENV_CONFIG)
    return Path(env) if env else DEFAULT_CONFIG


def load_config(path: str | os.PathLike[str] | None = None, *, deep: bool = False) -> Config:
    """Read, substitute and validate; raise ConfigError listing every problem.

    ``deep``: also check that apprise can send to each channel's URL. Not part of every load:
    importing apprise and its plugins costs about 0.3 s, which every command would pay;
    `monitor check`, the daemon's start and each config reload ask for it.
    """
    config_path = resolve_config_path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(str(config_path), None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(config_path), None, "", str(exc))]) from None
    return parse_config(text, config_path, dict(os.environ), deep=deep)


@dataclass(frozen=True)
class Locations:
    """Where the daemon's files are, as a config file names them, read without validating it:
    while an edit is broken the daemon keeps running, and `healthcheck` and `status` still judge it.
    Only these paths are read: nothing else of a config that failed is trusted or shown."""

    path: Path
    database: Path
    heartbeat: Path
    from_file: bool  # False: the file did not parse, these are the config model's defaults


def raw_locations(path: str | os.PathLike[str] | None = None) -> Locations:
    """`database` and `heartbeat` from the config file as YAML (with ${VAR} substituted), each
    falling back to the default the config model uses when the file or the key does not do."""
    config_path = resolve_config_path(path)
    data = _raw_mapping(config_path)
    base = config_path.parent
    database, heartbeat = (_raw_path(data, key) for key in ("database", "heartbeat"))
    return Locations(
        config_path, (base / database).resolve(), (base / heartbeat).resolve(), data is not None
    )


def _raw_mapping(path: Path) -> dict[Any, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return data if isinstance(data, dict) else None


def _raw_path(data: Mapping[Any, Any] | None, key: str) -> str:
    default = ConfigModel.model_fields[key].default
    value = (data or {}).get(key)
    if not isinstance(value, str):
        return str(default)
    unset: list[ConfigProblem] = []
    value = _substitute_env(value, (key,), dict(os.environ), set(), unset, {}, "")
    return value if value.strip() and not unset else str(default)


def parse_config(
    text: str, path: Path, environ: Mapping[str, str], *, deep: bool = False
) -> Config:
    shown = str(path)
    data, lines = _read_yaml(text, shown)
    problems: list[ConfigProblem] = []
    secrets: set[str] = set()
    data = _substitute_env(data, (), environ, secrets, problems, lines, shown)
    model: ConfigModel | None = None
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as exc:
        # A key whose ${VAR} was missing already has its problem; don't add a follow-on one.
        unset = {p.key for p in problems}
        problems.extend(p for p in _pydantic_problems(exc, lines, shown) if p.key not in unset)
    # The checks across sections run even when some section is wrong, on what did validate:
    # `monitor check` reports every problem at once, not one layer per run.
    parts = _Parts.of_model(model) if model is not None else _Parts.of_raw(data)
    problems.extend(_cross_checks(parts, path.parent, lines, shown))
    if deep:
        flawed = {p.key for p in problems}
        problems.extend(
            p
            for p in _channel_url_problems(parts, lines, shown)
            if not any(k == p.key.removesuffix(".url") or k.startswith(p.key) for k in flawed)
        )
    if problems:
        # Masked as a valid config's output is: a problem may quote a value from the environment
        # (a channel URL's token), and a config that failed has no `Config.mask` to do it later.
        hidden = _secrets_worth_masking(secrets)
        problems = [replace(p, message=mask_secrets(p.message, hidden)) for p in problems]
        raise ConfigError(sorted(problems, key=lambda p: (p.line or 0, p.key)))
    assert model is not None
    base = path.parent
    return Config(
        path=path,
        model=model,
        database=(base / model.database).resolve(),
        heartbeat=(base / model.heartbeat).resolve(),
        secrets=_secrets_worth_masking(secrets),
        lines=lines,
    )


# --------------------------------------------------------------------------- YAML with line numbers

Path_ = tuple[str | int, ...]


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: `Off`, `no`, `yes` stay strings (a feed named Off)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


_EMPTY_FILE = (
    "the file is empty (or only comments): nothing to watch; the project's "
    "config/monitor.yaml is a commented example"
)


# PyYAML's words for the usual indentation slips, and what to look at (its own say nothing of it).
_YAML_HINTS = (
    (
        "mapping values are not allowed here",
        "check the indentation: is this line indented deeper than the key above it? "
        "A value that holds ': ' needs quotes",
    ),
    ("expected <block end>", "check the indentation: this line does not line up with those above"),
    ("did not find expected", "check the indentation: this line does not line up with those above"),
    ("found character '\\t'", "indent with spaces: YAML does not allow tabs"),
)


def _yaml_hint(problem: str) -> str | None:
    return next((hint for words, hint in _YAML_HINTS if words in problem), None)


def _read_yaml(text: str, shown: str) -> tuple[Any, dict[str, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = " ".join(filter(None, [exc.context, exc.problem])) or str(exc)
        hint = _yaml_hint(exc.problem or "")
        message += f" ({hint})" if hint else ""
        raise ConfigError([ConfigProblem(shown, line, "", f"YAML syntax: {message}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(shown, None, "", f"YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if data is None or data == {}:
        # An empty file is a failed save or a stray `>`, never a wish to watch nothing: a
        # reload that took it would drop every feed, topic and channel without a word.
        raise ConfigError([ConfigProblem(shown, None, "", _EMPTY_FILE)])
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(shown, 1, "", "the file must be a mapping of keys")])
    lines: dict[str, int] = {}
    duplicates: list[ConfigProblem] = []
    if node is not None:
        _record_lines(node, (), lines, duplicates, shown)
    if duplicates:
        raise ConfigError(duplicates)
    return data, lines


def _record_lines(
    node: yaml.Node,
    path: Path_,
    lines: dict[str, int],
    duplicates: list[ConfigProblem],
    shown: str,
) -> None:
    lines.setdefault(_dotted(path), node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if _dotted((*path, key)) in lines:
                # YAML would silently keep the last one; that is never what the user meant.
                message = f"duplicate key (also on line {lines[_dotted((*path, key))]})"
                duplicates.append(ConfigProblem(shown, line, _dotted((*path, key)), message))
            lines[_dotted((*path, key))] = line
            _record_lines(value_node, (*path, key), lines, duplicates, shown)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines, duplicates, shown)


def line_of(lines: Mapping[str, int], path: Path_) -> int | None:
    """The line of the deepest part of `path` the file has (a missing key -> its parent)."""
    for end in range(len(path), -1, -1):
        found = lines.get(_dotted(path[:end]))
        if found:
            return found
    return None


# --------------------------------------------------------------------------- ${ENV} substitution

_ENV_RE = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute_env(
    value: Any,
    path: Path_,
    environ: Mapping[str, str],
    secrets: set[str],
    problems: list[ConfigProblem],
    lines: Mapping[str, int],
    shown: str,
) -> Any:
    def recurse(child: Any, key: str | int) -> Any:
        return _substitute_env(child, (*path, key), environ, secrets, problems, lines, shown)

    if isinstance(value, dict):
        return {k: recurse(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [recurse(v, i) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(found: re.Match[str]) -> str:
        escaped, name, default = found.groups()
        if escaped:  # $${NAME} stays literal
            return found.group(0)[1:]
        if name in environ:
            secrets.add(environ[name])
            return environ[name]
        if default is not None:
            return default
        problems.append(
            ConfigProblem(
                shown,
                line_of(lines, path),
                _dotted(path),
                f"environment variable {name} is not set (write ${{{name}:-default}} to allow that)",
            )
        )
        return ""

    return _ENV_RE.sub(replace, value)


# --------------------------------------------------------------------------- problems


_VALIDATOR_TAG = re.compile(r"function-(?:before|after|wrap|plain)\[.*\]\Z", re.DOTALL)


def _pydantic_problems(
    exc: ValidationError, lines: Mapping[str, int], shown: str
) -> Iterator[ConfigProblem]:
    for error in exc.errors():
        # Drop pydantic's internal loc parts (validator names such as 'function-before[...]'),
        # not the user's keys (a channel may be named 'desk[1]').
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and _VALIDATOR_TAG.match(p)))
        message = _friendly_message(error, loc) or error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = _unknown_key_message(loc)
        elif error["type"] == "missing":
            message = "required key is missing"
        yield ConfigProblem(shown, line_of(lines, loc), _dotted(loc), message)


def _unknown_key_message(loc: tuple[str | int, ...]) -> str:
    hint = did_you_mean(str(loc[-1]), _keys_at(ConfigModel, loc[:-1]))
    return f"unknown key ({hint or 'check its spelling and indentation'})"


def did_you_mean(word: str, choices: Iterable[Any]) -> str | None:
    """The "did you mean 'x'?" for the choice closest to `word` (case aside); None if none is."""
    by_lower = {str(choice).lower(): str(choice) for choice in sorted(choices, key=str)}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.75)
    return f"did you mean {by_lower[close[0]]!r}?" if close else None


def _friendly_message(error: ErrorDetails, loc: tuple[str | int, ...]) -> str | None:
    """Plain words for pydantic's generic errors ("Input should be a valid list"), by error type
    rather than by field; None: pydantic's (or the validator's) own message says it well."""
    kind, value = error["type"], error.get("input")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "?")  # pydantic's own wording
        return _choice_message(value, _literals_at(ConfigModel, loc) or [expected])
    if kind == "list_type":
        return _list_message(loc, value)
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false, not {_echo(value)}"
    if kind in ("int_parsing", "int_type"):
        return f"must be a whole number, not {_echo(value)}"
    return None


def _echo(value: Any) -> str:
    """A value as the file wrote it, shortened (problems are masked before they are shown)."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _choice_message(value: Any, choices: Sequence[Any]) -> str:
    message = f"{_echo(value)} is not one of {', '.join(map(str, choices))}"
    hint = did_you_mean(str(value), choices) if isinstance(value, str) else None
    return f"{message} ({hint})" if hint else message


def _list_message(loc: tuple[str | int, ...], value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool) or "\n" in str(value):
        return "must be a list: one `- item` a line, or `[a, b]`"
    key = f"{loc[-1]}: " if loc and isinstance(loc[-1], str) else ""
    return f"must be a list, e.g. `{key}[{value}]`"


def _literals_at(annotation: Any, path: tuple[str | int, ...]) -> list[Any]:
    """The values a `Literal[...]` at ``path`` allows (empty where the walk gets lost)."""
    return [
        choice
        for option in _options_at(annotation, path)
        if get_origin(option) is Literal
        for choice in get_args(option)
    ]


def _keys_at(annotation: Any, path: tuple[str | int, ...]) -> set[str]:
    """The keys the config allows at ``path`` (a pydantic error's location), walking the models'
    annotations; empty where the walk gets lost (a union member pydantic named, say)."""
    return {
        name
        for option in _options_at(annotation, path)
        if isinstance(option, type) and issubclass(option, BaseModel)
        for name in option.model_fields
    }


def _options_at(annotation: Any, path: tuple[str | int, ...]) -> list[Any]:
    """The plain types the models' annotations allow at ``path``."""
    options = _unwrap(annotation)
    for part in path:
        options = [nxt for option in options for nxt in _step(option, part)]
    return options


def _unwrap(annotation: Any) -> list[Any]:
    """``A | B | None`` and ``Annotated[A, ...]`` -> the plain types inside."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _step(annotation: Any, part: str | int) -> list[Any]:
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found = annotation.model_fields.get(str(part))
        return _unwrap(found.annotation) if found is not None else []
    if origin in (list, tuple) and isinstance(part, int) and args:
        return _unwrap(args[0])
    if origin is dict and isinstance(part, str) and len(args) == 2:
        return _unwrap(args[1])
    return []


@dataclass(frozen=True)
class _Parts:
    """What the cross-section checks read: from the validated model, or, when some section did
    not validate, from the raw data as far as it goes (None: not known)."""

    feed_names: list[str | None]
    topics: list[tuple[int, Topic]]  # (index in the file, validated topic)
    channels: dict[str, ChannelEntry] | None
    channel_names: set[str] | None
    health_notify: list[Any]

    @classmethod
    def of_model(cls, model: ConfigModel) -> _Parts:
        return cls(
            [f.name for f in model.feeds],
            list(enumerate(model.topics)),
            model.channels,
            set(model.channels),
            list(model.health.notify),
        )

    @classmethod
    def of_raw(cls, data: Any) -> _Parts:
        data = data if isinstance(data, dict) else {}
        feeds = data.get("feeds") if isinstance(data.get("feeds"), list) else []
        raw_channels = data.get("channels")
        health = data.get("health") if isinstance(data.get("health"), dict) else {}
        notify: list[Any] = health["notify"] if isinstance(health.get("notify"), list) else []
        return cls(
            [f.get("name") if isinstance(f, dict) else None for f in feeds],
            _valid_topics(data.get("topics")),
            _valid_channels(raw_channels),
            _channel_names(raw_channels),
            notify,
        )


def _channel_names(raw: Any) -> set[str] | None:
    if raw is None:  # no `channels:` at all: there are none
        return set()
    return set(map(str, raw)) if isinstance(raw, dict) else None  # not a mapping: unknown


def _valid_topics(raw: Any) -> list[tuple[int, Topic]]:
    found = []
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        with contextlib.suppress(ValidationError):
            found.append((index, Topic.model_validate(item)))
    return found


def _valid_channels(raw: Any) -> dict[str, ChannelEntry] | None:
    if not isinstance(raw, dict):
        return None
    adapter = TypeAdapter(ChannelEntry)
    found = {}
    for name, item in raw.items():
        with contextlib.suppress(ValidationError):
            found[str(name)] = adapter.validate_python(item)
    return found


def _cross_checks(
    parts: _Parts, base: Path, lines: Mapping[str, int], shown: str
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []

    def problem(path: Path_, message: str) -> None:
        problems.append(ConfigProblem(shown, line_of(lines, path), _dotted(path), message))

    _check_unique(parts.feed_names, ("feeds",), "name", "feed", problem)
    topic_names: list[str | None] = [None] * (max((i for i, _ in parts.topics), default=-1) + 1)
    for index, topic in parts.topics:
        topic_names[index] = topic.name
    _check_unique(topic_names, ("topics",), "name", "topic", problem)
    channels = parts.channel_names
    for index, topic in parts.topics:
        for j, channel in enumerate(topic.notify):
            if channels is not None and channel not in channels:
                problem(("topics", index, "notify", j), _no_channel(channel, channels))
        _check_topic_query(topic, ("topics", index), problem)
        _check_languages(topic, ("topics", index, "languages"), problem)
        _check_template(topic.template, base, ("topics", index, "template"), problem)
    for name, entry in (parts.channels or {}).items():
        if isinstance(entry, Channel):
            _check_template(entry.template, base, ("channels", name, "template"), problem)
    for j, channel in enumerate(parts.health_notify):
        # A raw entry that is not a name (`- desk-chat:` is a mapping) has its own problem.
        if isinstance(channel, str) and channels is not None and channel not in channels:
            problem(("health", "notify", j), _no_channel(channel, channels))
    return problems


def _no_channel(name: str, channels: set[str]) -> str:
    hint = did_you_mean(name, channels)
    return f"no channel named {name!r} ({hint})" if hint else f"no channel named {name!r}"


def _channel_url_problems(
    parts: _Parts, lines: Mapping[str, int], shown: str
) -> list[ConfigProblem]:
    """Channels whose URL apprise cannot send to (an unknown scheme, a URL missing its parts)."""
    if not parts.channels:
        return []
    import apprise

    problems = []
    for name, channel in parts.channels.items():
        if apprise.Apprise.instantiate(channel.url) is None:
            key: Path_ = ("channels", name, "url")
            problems.append(
                ConfigProblem(
                    shown,
                    line_of(lines, key),
                    _dotted(key),
                    "not a URL apprise can send to (an unknown scheme, a missing part, or a "
                    "service whose extra package is not installed: "
                    "https://github.com/caronc/apprise/wiki)",
                )
            )
    return problems


def _check_languages(topic: Topic, path: Path_, problem: Callable[[Path_, str], None]) -> None:
    from monitor.match.percolate import normalise_languages
    from monitor.match.query import QueryError

    try:
        normalise_languages(topic.languages)
    except QueryError as exc:
        problem(path, exc.message)


def _check_template(
    name: str | None, base: Path, path: Path_, problem: Callable[[Path_, str], None]
) -> None:
    """A template file exists and parses (or an alert would fall back to the default at send
    time, with only a log line to say so)."""
    if name is None:
        return
    file = base / name
    try:
        source = file.read_text(encoding="utf-8")
    except OSError as exc:
        problem(path, f"cannot read template {file}: {exc.strerror or exc}")
        return
    except UnicodeDecodeError:
        problem(path, f"cannot read template {file}: not UTF-8 text")
        return
    import jinja2

    from monitor.alert.render import template_environment

    try:  # compiled as the renderer will: an unknown filter is found here too
        template_environment("text").from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        problem(path, f"template {file}, line {exc.lineno}: {exc.message}")


def _check_unique(
    names: Sequence[str | None],
    path: Path_,
    key: str,
    what: str,
    problem: Callable[[Path_, str], None],
) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not isinstance(name, str):  # a raw entry without a name has its own problem
            continue
        if name in seen:
            problem((*path, index, key), f"another {what} is already named {name!r}")
        seen.add(name)


def compiled_query(topic: Topic) -> str:
    """The topic as one query in the search language (the list form compiled into it)."""
    from monitor.match.query import compile_list_form

    return topic.query or compile_list_form(topic.all, topic.any, topic.none)


def _check_topic_query(topic: Topic, path: Path_, problem: Callable[[Path_, str], None]) -> None:
    from monitor.match.query import QueryError, validate_query

    try:
        validate_query(compiled_query(topic))
    except QueryError as exc:
        key = "query" if topic.query else "all"
        problem((*path, key), f"topic {topic.name}: {exc}")
