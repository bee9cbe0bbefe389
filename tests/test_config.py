from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import (
    ConfigError,
    ConfigProblem,
    load_config,
    mask_url_secrets,
    parse_config,
    parse_duration,
    parse_size,
    raw_locations,
)

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = """\
database: ../state/monitor.db
defaults: {interval: 15m, timeout: 20s}
feeds:
  - name: Moscow Times
    url: https://example.org/rss/news
    interval: 10m            # optional, overrides defaults
channels:                    # name -> apprise URL (used by the alerts issue)
  analyst-email: "mailto://..."
topics:                      # used by the topics issue
  - name: russia-dprk-military
    query: 'russia AND "north korea"'
    notify: [analyst-email]
"""


def write(tmp_path: Path, text: str, name: str = "monitor.yaml") -> Path:
    path = tmp_path / "config" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("conf.yaml"), env or {})
    return [str(p) for p in caught.value.problems]


def test_minimal_shape_is_accepted_and_paths_resolve_against_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    config = load_config(path)
    assert config.database == (tmp_path / "state" / "monitor.db").resolve()
    feed = config.feeds[0]
    assert config.feed_interval(feed) == timedelta(minutes=10)
    assert config.feed_timeout(feed) == timedelta(seconds=20)
    assert config.channels["analyst-email"].url == "mailto://..."
    assert config.channels["analyst-email"].mode == "immediate"
    assert config.topics[0].notify == ["analyst-email"]


def test_shipped_example_config_is_valid() -> None:
    config = load_config(ROOT / "config" / "monitor.yaml")
    assert len(config.feeds) >= 6
    assert {t.name for t in config.topics} >= {"russia-dprk-military", "kursk"}
    assert config.channels == {}  # alert channels are commented out so it runs as shipped


def test_every_problem_is_reported_at_once_with_file_line_and_key() -> None:
    text = """\
defaults:
  interval: often
feeds:
  - name: A
    url: ftp://example.org/feed
  - name: A
    url: https://example.org/b
    intervall: 5m
topics:
  - name: t
    notify: [nowhere]
    query: x
"""
    found = problems(text)
    assert (
        "conf.yaml:2: defaults.interval: 'often' is not a duration (use e.g. 90s, 15m, 1h30m, 3d)"
        in found
    )
    assert any(
        p.startswith("conf.yaml:5: feeds[0].url:") and "not an http(s) URL" in p for p in found
    )
    assert any(p.startswith("conf.yaml:8: feeds[1].intervall: unknown key") for p in found)
    # The checks across sections run too, on the parts that validated: not one layer per run.
    assert "conf.yaml:6: feeds[1].name: another feed is already named 'A'" in found
    assert "conf.yaml:11: topics[0].notify[0]: no channel named 'nowhere'" in found
    assert len(found) == 5


def test_checks_across_sections_skip_what_did_not_validate() -> None:
    text = """channels: [not, a, mapping]
topics:
  - name: t
    notify: [chat]
    query: "x AND"
  - name: t
    query: 5m
    languages: bad
"""
    found = problems(text)
    assert any(p.startswith("conf.yaml:1: channels:") for p in found)
    # topics[0] validated: its query is checked; its notify cannot be (the channels are unknown)
    assert any(p.startswith("conf.yaml:5: topics[0].query: topic t:") for p in found)
    assert not any("no channel named" in p for p in found)
    assert any(p.startswith("conf.yaml:8: topics[1].languages:") for p in found)
    assert not any("already named" in p for p in found)  # topics[1] did not validate


def test_a_health_notify_entry_that_is_not_a_name_is_a_problem_not_a_crash() -> None:
    found = problems("health:\n  notify:\n    - desk-chat:\n    - [a]\n    - nowhere\n")
    assert any(p.startswith("conf.yaml:3: health.notify[0]:") for p in found)
    assert "conf.yaml:5: health.notify[2]: no channel named 'nowhere'" in found


def test_languages_templates_and_http_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    (tmp_path / "ok.j2").write_text("{{ title }}", encoding="utf-8")
    (tmp_path / "broken.j2").write_text("{% if title %}no end", encoding="utf-8")
    (tmp_path / "filter.j2").write_text("{{ title | nosuchfilter }}", encoding="utf-8")
    text = """http: nowhere
channels:
  chat: {url: "json://localhost/x", template: missing.j2}
topics:
  - {name: a, query: x, languages: [english]}
  - {name: b, query: x, languages: ["en, ru"]}
  - {name: c, query: x, languages: [en, RU, pt-BR], template: ok.j2}
  - {name: d, query: x, template: broken.j2}
  - {name: e, query: x, template: filter.j2, languages: [eng]}
"""
    found = [str(p) for p in _problems_at(tmp_path, text)]
    conf = tmp_path / "conf.yaml"
    assert f"{conf}:1: http: 'nowhere' is not HOST:PORT (e.g. 127.0.0.1:9100)" in found
    assert any(
        p.startswith(f"{conf}:3: channels.chat.template: cannot read template") for p in found
    )
    assert any(p.startswith(f"{conf}:5: topics[0].languages: not a language code") for p in found)
    assert any(p.startswith(f"{conf}:6: topics[1].languages: not a language code") for p in found)
    assert any(
        p.startswith(f"{conf}:8: topics[3].template: template {tmp_path / 'broken.j2'}, line 1:")
        for p in found
    )
    assert any(  # compiled as the renderer compiles it, not only parsed
        p.startswith(f"{conf}:9: topics[4].template:") and "nosuchfilter" in p for p in found
    )
    assert f"{conf}:9: topics[4].languages: use the two-letter code 'en' for 'eng'" in found
    assert len(found) == 7  # topic c is fine


def test_a_channel_url_apprise_cannot_send_to_is_found_by_a_deep_load(tmp_path: Path) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text(
        'channels:\n  good: "json://localhost/x"\n  bad:\n    url: "nonsense://foo"\n',
        encoding="utf-8",
    )
    assert load_config(conf).channels["bad"].url == "nonsense://foo"  # a plain load: not checked
    with pytest.raises(ConfigError) as info:
        load_config(conf, deep=True)  # `monitor check`, the daemon's start, a reload
    assert [str(p) for p in info.value.problems] == [
        f"{conf}:4: channels.bad.url: not a URL apprise can send to (an unknown scheme, a "
        "missing part, or a service whose extra package is not installed: "
        "https://github.com/caronc/apprise/wiki)"
    ]


def test_a_missing_variable_in_a_channel_url_is_one_problem_not_two(tmp_path: Path) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text('channels:\n  desk: "${NO_SUCH_VARIABLE_HERE}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(conf, deep=True)
    assert [p.key for p in info.value.problems] == ["channels.desk"]


def _problems_at(folder: Path, text: str) -> list[ConfigProblem]:
    conf = folder / "conf.yaml"
    conf.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(conf)
    return info.value.problems


def test_an_unknown_key_names_the_closest_key_allowed_there() -> None:
    text = """\
defaults:
  intervall: 5m
fetch:
  per_hots: 3
feeds:
  - {name: A, url: "https://a.example/feed", fetch_articel: false}
channels:
  "desk[1]": {url: "json://127.0.0.1:9/hook", mdoe: digest}
topics:
  - {name: t, query: x, colour: red}
"""
    found = problems(text)
    assert "conf.yaml:2: defaults.intervall: unknown key (did you mean 'interval'?)" in found
    assert "conf.yaml:4: fetch.per_hots: unknown key (did you mean 'per_host'?)" in found
    assert any(
        p.startswith(
            "conf.yaml:6: feeds[0].fetch_articel: unknown key (did you mean 'fetch_article'"
        )
        for p in found
    )
    assert any("channels.desk[1].mdoe: unknown key (did you mean 'mode'?)" in p for p in found)
    # Nothing close: the plain hint.
    assert (
        "conf.yaml:10: topics[0].colour: unknown key (check its spelling and indentation)" in found
    )


def test_cross_checks_name_line_and_key() -> None:
    text = """\
feeds:
  - {name: A, url: "https://a.example/feed"}
  - {name: A, url: "https://b.example/feed"}
topics:
  - name: t
    query: x
    notify: [nowhere]
"""
    found = problems(text)
    assert "conf.yaml:3: feeds[1].name: another feed is already named 'A'" in found
    assert "conf.yaml:7: topics[0].notify[0]: no channel named 'nowhere'" in found


def test_env_substitution_with_defaults_and_errors() -> None:
    text = """\
channels:
  mail: "mailtos://bob:${SMTP_PASSWORD}@mail.example.org"
  chat: "ntfy://ntfy.example/${TOPIC:-news}"
"""
    config = parse_config(text, Path("c.yaml"), {"SMTP_PASSWORD": "hunter2-secret"})
    assert config.channels["mail"].url == "mailtos://bob:hunter2-secret@mail.example.org"
    assert config.channels["chat"].url == "ntfy://ntfy.example/news"
    masked = config.mask(f"sending to {config.channels['mail'].url}")
    assert "hunter2" not in masked and "***" in masked
    found = problems("feeds:\n  - name: x\n    url: ${FEED_URL}\n")
    assert found == [
        "conf.yaml:3: feeds[0].url: environment variable FEED_URL is not set "
        "(write ${FEED_URL:-default} to allow that)"
    ]


def test_yaml_syntax_error_names_the_line() -> None:
    found = problems("feeds:\n  - name: [unclosed\n")
    assert len(found) == 1 and found[0].startswith("conf.yaml:") and "YAML syntax" in found[0]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "{}\n", "---\n"])
def test_an_empty_file_is_an_error_not_a_config_that_watches_nothing(text: str) -> None:
    assert problems(text) == [
        "conf.yaml: the file is empty (or only comments): nothing to watch; the project's "
        "config/monitor.yaml is a commented example"
    ]


def test_topic_needs_exactly_one_form() -> None:
    found = problems("topics:\n  - name: t\n    query: a\n    all: [[b]]\n")
    assert any("either `query:` or the list form" in p for p in found)
    found = problems("topics:\n  - name: t\n")
    assert any("needs a `query:`" in p for p in found)


def test_channel_object_form_and_digest_schedule() -> None:
    text = """\
channels:
  d: {url: "json://localhost", mode: digest, schedule: "0 8 * * *", timezone: Europe/Berlin}
  bad: {url: "json://localhost", mode: digest}
  tz: {url: "json://localhost", timezone: Mars/Olympus}
"""
    found = problems(text)
    assert any(p.startswith("conf.yaml:3: channels.bad:") and "cron" in p for p in found)
    assert any(p.startswith("conf.yaml:4: channels.tz.timezone:") for p in found)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert "file not found" in str(caught.value)


def test_config_found_via_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL, "other.yaml")
    monkeypatch.setenv("MONITOR_CONFIG", str(path))
    assert load_config(None).path == path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("20s", 20), ("1h30m", 5400), ("3d", 259200), (90, 90), ("1w", 604800)],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_bad_durations_and_sizes() -> None:
    for bad in ("soon", "15x", "m15", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_size("10MB") == 10_000_000
    assert parse_size("512KiB") == 524288
    with pytest.raises(ValueError):
        parse_size("lots")


def test_duplicate_keys_are_refused() -> None:
    found = problems("defaults: {interval: 5m}\nfeeds: []\ndefaults: {timeout: 2s}\n")
    assert found == ["conf.yaml:3: defaults: duplicate key (also on line 1)"]


def test_yaml_1_1_booleans_stay_strings() -> None:
    config = parse_config(
        "feeds:\n  - {name: Off, url: 'https://a.example/f', enabled: false}\n"
        "  - {name: no, url: 'https://b.example/f'}\n",
        Path("c.yaml"),
        {},
    )
    assert [f.name for f in config.feeds] == ["Off", "no"]
    assert config.feeds[0].enabled is False


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "mailtos://me:hunter2@mail.example.org?to=a@b.org",
            "mailtos://me:***@mail.example.org?to=a@b.org",
        ),
        ("json://user:p%40ss@hook.example:8080/x", "json://user:***@hook.example:8080/x"),
        # A host and port, then an address in the query: nothing to hide.
        (
            "mailto://127.0.0.1:8025?from=me@example.org&to=a@b.org",
            "mailto://127.0.0.1:8025?from=me@example.org&to=a@b.org",
        ),
        ("ntfy://ntfy.sh:443/topic#me@x", "ntfy://ntfy.sh:443/topic#me@x"),
    ],
)
def test_url_passwords_are_masked_and_ports_before_a_query_are_not(url: str, shown: str) -> None:
    assert mask_url_secrets(url) == shown


# --------------------------------------------------------------------------- plain-word problems


def test_a_misspelt_notify_channel_names_the_closest_channel() -> None:
    text = """\
channels:
  desk: "json://127.0.0.1:9/hook"
topics:
  - {name: t, query: x, notify: [dsek, zzz]}
health:
  notify: [Desk]
"""
    found = problems(text)
    assert (
        "conf.yaml:4: topics[0].notify[0]: no channel named 'dsek' (did you mean 'desk'?)" in found
    )
    assert "conf.yaml:4: topics[0].notify[1]: no channel named 'zzz'" in found
    assert "conf.yaml:6: health.notify[0]: no channel named 'Desk' (did you mean 'desk'?)" in found


def test_pydantic_wording_for_choices_lists_and_scalars_is_replaced() -> None:
    text = """\
log_level: info
workers: many
channels:
  mail: {url: "json://127.0.0.1:9/hook", mode: digset, format: txt}
topics:
  - name: t
    query: x
    notify: mail
    languages: en, ru
    alert_on_reports: sometimes
feeds: {name: A}
"""
    found = problems(text)
    assert (
        "conf.yaml:1: log_level: 'info' is not one of DEBUG, INFO, WARNING, ERROR "
        "(did you mean 'INFO'?)"
    ) in found
    assert "conf.yaml:2: workers: must be a whole number, not 'many'" in found
    assert (
        "conf.yaml:4: channels.mail.mode: 'digset' is not one of immediate, digest "
        "(did you mean 'digest'?)"
    ) in found
    assert (
        "conf.yaml:4: channels.mail.format: 'txt' is not one of text, markdown, html "
        "(did you mean 'text'?)"
    ) in found
    assert "conf.yaml:8: topics[0].notify: must be a list, e.g. `notify: [mail]`" in found
    assert "conf.yaml:9: topics[0].languages: must be a list, e.g. `languages: [en, ru]`" in found
    assert (
        "conf.yaml:10: topics[0].alert_on_reports: must be true or false, not 'sometimes'" in found
    )
    assert "conf.yaml:11: feeds: must be a list: one `- item` a line, or `[a, b]`" in found
    assert not any("Input should" in p for p in found)


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        # A key indented two spaces too deep: read as the value above going on, then ':'.
        (
            "feeds:\n  - name: A\n    url: https://a.example/feed\n      interval: 5m\n",
            4,
            "is this line indented deeper than the key above it?",
        ),
        ("defaults:\n  interval: 5m\n timeout: 3s\n", 3, "does not line up with those above"),
        ("feeds:\n  - name: A\n    url: x\n   - name: B\n", 4, "does not line up"),
        ("defaults:\n\tinterval: 5m\n", 2, "indent with spaces: YAML does not allow tabs"),
    ],
)
def test_yaml_indentation_slips_keep_the_line_and_get_a_hint(
    text: str, line: int, hint: str
) -> None:
    (found,) = problems(text)
    assert found.startswith(f"conf.yaml:{line}: YAML syntax: ") and hint in found


def test_other_yaml_syntax_errors_get_no_indentation_hint() -> None:
    (found,) = problems("feeds:\n  - name: [unclosed\n")
    assert "YAML syntax" in found and "indent" not in found


def test_a_channel_reports_a_bad_timezone_and_a_bad_schedule_at_once() -> None:
    text = """\
channels:
  d:
    url: "json://127.0.0.1:9/hook"
    mode: digest
    timezone: Mars/Olympus
    schedule: "99 8 * * *"
"""
    found = problems(text)
    assert found[0] == "conf.yaml:5: channels.d.timezone: unknown timezone 'Mars/Olympus'"
    assert found[1].startswith("conf.yaml:6: channels.d.schedule: bad cron schedule '99 8 * * *'")
    assert len(found) == 2


def test_a_schedule_on_an_immediate_channel_is_refused() -> None:
    text = """\
channels:
  plain: {url: "json://127.0.0.1:9/a", schedule: "0 8 * * *"}
  said: {url: "json://127.0.0.1:9/b", mode: immediate, schedule: "0 8 * * *"}
  digest: {url: "json://127.0.0.1:9/c", mode: digest, schedule: "0 8 * * *"}
  typo: {url: "json://127.0.0.1:9/d", mode: digset, schedule: "0 8 * * *"}
"""
    found = problems(text)
    refused = "a schedule: add `mode: digest`, or remove it"
    assert any(p.startswith("conf.yaml:2: channels.plain.schedule: only a digest") for p in found)
    assert any(p.startswith("conf.yaml:3: channels.said.schedule:") and refused in p for p in found)
    # A misspelt mode is its own problem, not a second one on the schedule.
    assert [p for p in found if "channels.typo" in p] == [
        "conf.yaml:5: channels.typo.mode: 'digset' is not one of immediate, digest "
        "(did you mean 'digest'?)"
    ]
    assert len(found) == 3


def test_problems_of_a_config_that_failed_are_masked() -> None:
    text = """\
channels:
  chat:
    url: "json://hook.example/${HOOK_TOKEN}"
    retry_for: ${HOOK_TOKEN}
log_level: "mailtos://bob:hunter2@mail.example.org"
"""
    found = problems(text, {"HOOK_TOKEN": "tok-7f3a9c"})
    assert "conf.yaml:4: channels.chat.retry_for: '***' is not a duration" in found[0]
    assert "bob:***@mail.example.org" in found[1]
    assert not any("tok-7f3a9c" in p or "hunter2" in p for p in found)


# --------------------------------------------------------------------------- raw locations


def test_raw_locations_read_database_and_heartbeat_from_a_config_that_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_STATE", str(tmp_path / "elsewhere"))
    path = write(tmp_path, "database: ${MONITOR_STATE}/m.db\nheartbeat: beat\nlog_level: loud\n")
    found = raw_locations(path)
    assert (found.database, found.heartbeat) == (
        (tmp_path / "elsewhere" / "m.db").resolve(),
        (tmp_path / "config" / "beat").resolve(),
    )
    assert found.from_file and found.path == path


@pytest.mark.parametrize(
    ("text", "from_file"),
    [
        ("feeds:\n  - name: [unclosed\n", False),  # does not parse
        ("- a list\n", False),  # not a mapping
        ("database: ${NOT_SET_ANYWHERE}/m.db\nheartbeat: {a: 1}\n", True),  # unusable values
        ("feeds: []\n", True),  # not given
    ],
)
def test_raw_locations_fall_back_to_the_models_defaults(
    tmp_path: Path, text: str, from_file: bool
) -> None:
    path = write(tmp_path, text)
    found = raw_locations(path)
    assert found.database == (tmp_path / "state" / "monitor.db").resolve()
    assert found.heartbeat == (tmp_path / "state" / "heartbeat").resolve()
    assert found.from_file is from_file
    assert raw_locations(tmp_path / "missing.yaml").from_file is False
