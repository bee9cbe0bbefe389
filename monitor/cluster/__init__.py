"""Developments: group a topic's matched articles by the event they report.

See ``monitor.cluster.decide`` for the method. Public API re-exported here.
"""

from __future__ import annotations

from monitor.cluster.decide import (
    Candidate,
    ClusterParams,
    Decision,
    DevelopmentView,
    Member,
    Move,
    Relation,
    containment,
    decide,
    find_merges,
    in_window,
    pair_features,
    probability,
    regroup,
)
from monitor.cluster.features import DocFeatures, features
from monitor.cluster.similarity import FEATURE_NAMES, PAIR_FEATURE_NAMES
from monitor.cluster.stats import CorpusStats, DocFreqs
from monitor.cluster.topicterms import TopicTerms

__all__ = [
    "FEATURE_NAMES",
    "PAIR_FEATURE_NAMES",
    "Candidate",
    "ClusterParams",
    "CorpusStats",
    "Decision",
    "DevelopmentView",
    "DocFeatures",
    "DocFreqs",
    "Member",
    "Move",
    "Relation",
    "TopicTerms",
    "containment",
    "decide",
    "features",
    "find_merges",
    "in_window",
    "pair_features",
    "probability",
    "regroup",
]
