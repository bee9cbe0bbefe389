"""news-monitor: watch news feeds for topics, group reports into developments, alert once."""

__version__ = "0.1.0"
