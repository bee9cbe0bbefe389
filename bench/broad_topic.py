"""A broad topic from an empty database: 15 reports of 8 events, one a syndicated copy.

Every report names North Korea and Russia (the topic's own vocabulary); the events differ
(troops in Kursk, a treaty ratified, a security chief's visit, a cargo ship, a bridge, a space
deal, ski tourists, a circus). Replayed oldest first through the clusterer the service uses,
regrouping after every 10, as ``bench/developments.py`` replays ECB+. Prints each decision,
where regrouping left each report, B-cubed F1 and the alerts (developments opened), with all
words weighed and without the example config's broad topic's query words (``TopicTerms``).

    python bench/broad_topic.py [--background]   # --background: ECB+ counted first (if present)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataclasses import replace

from bench.developments import DATA, Doc, bcubed, corpus_of, load, replay
from monitor.cluster import ClusterParams, TopicTerms, features
from monitor.config import load_config
from monitor.pipeline import topic_terms

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "monitor.yaml"
TOPIC = "russia-dprk-military"  # the example config's broad topic

ARTICLES = Path(__file__).with_name("broad_topic.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--background", action="store_true", help="count ECB+ articles first")
    args = parser.parse_args()
    rows = sorted(json.loads(ARTICLES.read_text(encoding="utf-8")), key=lambda r: -r["age_minutes"])
    docs = [
        Doc(
            i,
            0,
            r["event"],
            r["title"],
            "\n\n".join(r["body"]),
            features(r["title"], "\n\n".join(r["body"]), "en"),
        )
        for i, r in enumerate(rows)
    ]
    prior = None
    if args.background:
        if not DATA.exists():
            print(f"skipped: {DATA} not found")
            return 0
        prior = corpus_of(load())
    terms = topic_terms(load_config(EXAMPLE))[TOPIC]
    for label, ignored in (("all words", TopicTerms()), (f"without {TOPIC}'s query words", terms)):
        print(f"\n{label}:")
        run = replay(docs, replace(ClusterParams(), topic_terms=ignored), prior, 10)
        for doc in docs:
            decision = run.decisions[doc.index]
            print(
                f"  {rows[doc.index]['id']:6} {doc.event[:20]:20} {decision.relation:9} "
                f"p={decision.score:.2f}  now in development {run.assigned[doc.index]:2}  "
                f"{doc.title[:44]}"
            )
        gold = {d.index: d.event for d in docs}
        precision, recall, f1 = bcubed(run.assigned, gold)
        print(
            f"  B-cubed precision {precision:.3f} recall {recall:.3f} F1 {f1:.3f}; "
            f"{run.opened} alerts for {len(set(gold.values()))} events"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
