"""news-monitor tests (a package, so helpers import as tests.newsroom)."""
