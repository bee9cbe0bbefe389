"""Alerts: plan (pure) -> outbox (same transaction as the match) -> dispatch -> render -> send.

- `plan`: which outbox rows a poll's new matches make (alert_max_age, notify, grouping, relations).
- `outbox`: the table's operations: enqueue, claim-before-send, mark sent / failed, retry.
- `dispatch`: the `Dispatcher` that sends what is due (and `AlertService` for the daemon).
- `render`: Jinja2 templates, article text escaped per body format.
- `send`: apprise delivery, off the event loop, bounded by a timeout.
- `digest`, `health`: digests on a cron schedule; news-monitor's own trouble.
"""
