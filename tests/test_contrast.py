"""The contrastive split and the name and year vetoes of regrouping, on hand-written, real-looking
articles: two players of one team arrested for drunk driving on the same day (look-alikes a pair
model joins), one climbing accident told from several angles (must stay whole), and two emergency
browser patches years apart, the older one reported without a year."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

from monitor.cluster import (
    ClusterParams,
    CorpusStats,
    DevelopmentView,
    DocFeatures,
    Member,
    Move,
    features,
    find_merges,
    regroup,
)
from monitor.cluster.contrast import bisect, contrast, contrastive_split, local_vectors
from monitor.cluster.linkage import average_linkage, date_year, name_contrast, year_contrast
from monitor.cluster.similarity import Weigher
from tests.test_cluster import BACKGROUND, T0

PRICE = [
    (
        "Hawks receiver Darnell Price arrested on suspicion of DUI",
        "Riverside Hawks wide receiver Darnell Price was arrested early Sunday on suspicion of "
        "driving under the influence, police said.\n"
        "Officers stopped Price's black SUV on Harbor Drive at about 2:30 a.m. after it was seen "
        "weaving between lanes. He was booked into the county jail and released on $2,500 bail.\n"
        "The Hawks said they were aware of the arrest of their receiver and were gathering "
        "information. The team plays at home next Sunday.",
    ),
    (
        "Darnell Price, Hawks' leading receiver, booked for drunk driving",
        "Darnell Price, the Riverside Hawks' leading receiver, was arrested on suspicion of DUI "
        "on Sunday morning, hours after a team party.\n"
        "Price, 26, caught 71 passes for 1,040 yards this season. Police said his SUV was "
        "stopped on Harbor Drive and he failed a field sobriety test.\n"
        "Coach Ray Malone said the receiver would meet him on Monday.",
    ),
    (
        "Receiver Price arrested; Hawks 'disappointed'",
        "The Riverside Hawks said on Sunday they were disappointed after receiver Darnell Price "
        "was arrested on suspicion of driving under the influence.\n"
        "Price was pulled over on Harbor Drive and released on bail. His agent said the "
        "receiver had done nothing wrong and would fight the charge.\n"
        "It is not clear whether Price will play against the Bears.",
    ),
    (
        "Hawks' Price faces DUI charge after Harbor Drive stop",
        "Hawks receiver Darnell Price faces a misdemeanour DUI charge after police stopped his "
        "SUV on Harbor Drive early Sunday.\n"
        "A police spokesman said Price's blood alcohol level was above the legal limit. The "
        "receiver, in his fourth season, is due in court next month.\n"
        "The Hawks have not said whether Price will be disciplined.",
    ),
]
KOWAL = [
    (
        "Hawks defensive tackle Tomasz Kowal arrested on suspicion of DUI",
        "Tomasz Kowal, a defensive tackle for the Riverside Hawks, was arrested on suspicion of "
        "drunk driving on Sunday night, the state highway patrol said.\n"
        "A trooper clocked Kowal's pickup truck at 92 mph on the Lakeshore Expressway shortly "
        "before 11 p.m. The 31-year-old posted bond and was released.",
    ),
    (
        "Kowal, two-time Pro Bowl tackle, stopped at 92 mph",
        "Veteran Hawks tackle Tomasz Kowal was taken into custody by the highway patrol on "
        "Sunday after his pickup was clocked at 92 mph, and was later charged with DUI.\n"
        "Kowal, a two-time Pro Bowl pick in his ninth season, anchors the league's best run "
        "defence. A patrol spokeswoman said a breath test showed he was over the limit.",
    ),
    (
        "Tackle Kowal's arrest leaves Hawks' defensive line thin",
        "The arrest of defensive tackle Tomasz Kowal on a DUI charge leaves the Hawks short on "
        "the defensive line, with two other linemen already injured.\n"
        "Kowal was pulled over by the highway patrol on the Lakeshore Expressway on Sunday "
        "night. His lawyer, Nina Osei, said Kowal would plead not guilty.",
    ),
    (
        "Lawyer: Kowal will fight DUI charge",
        "Tomasz Kowal will plead not guilty to driving under the influence, his lawyer Nina "
        "Osei said after the Hawks tackle was arrested on Sunday night.\n"
        "Osei said the highway patrol's radar reading was wrong and that her client had drunk "
        "one beer. Kowal, 31, has no previous arrests in nine seasons with the Hawks.",
    ),
]
# One event, eight outlets, each with its own angle (the rescue, the family, the weather...).
CLIMBER = [
    (
        "Climber dies in fall on Mount Ardent",
        "A 34-year-old climber died on Saturday after falling about 300 metres from a ridge on "
        "Mount Ardent, police said.\n"
        "The man, from Westport, was climbing with a friend when he slipped on ice near the "
        "summit. A rescue helicopter recovered his body on Sunday morning.",
    ),
    (
        "Westport man killed in Mount Ardent fall named",
        "Police have named the climber who died on Mount Ardent on Saturday as Liam Forde, 34, "
        "from Westport.\n"
        "Forde fell from the north ridge while descending with a friend. His family said he was "
        "an experienced mountaineer who had climbed in the Alps and the Andes.",
    ),
    (
        "Helicopter recovers body of climber from Mount Ardent",
        "A rescue helicopter recovered the body of a climber from Mount Ardent on Sunday, a day "
        "after he fell from a ridge near the summit.\n"
        "The rescue team said strong winds had kept the helicopter on the ground on Saturday "
        "night. Liam Forde, 34, of Westport, was climbing with a friend.",
    ),
    (
        "Mount Ardent death: rangers warn of icy ridges",
        "Park rangers warned climbers to avoid the ridges of Mount Ardent after Liam Forde, 34, "
        "died in a fall on Saturday.\n"
        "Chief ranger Ana Duarte said ice had formed on the north ridge after a cold night and "
        "that crampons were essential above 2,500 metres.",
    ),
    (
        "Friend of climber who fell on Mount Ardent tells of rescue wait",
        "The climbing partner of Liam Forde, who died on Mount Ardent on Saturday, waited six "
        "hours on the ridge for rescuers, police said.\n"
        "The friend, who was not hurt, called for help after Forde slipped on ice and fell "
        "about 300 metres. A helicopter lifted him off the mountain at dusk.",
    ),
    (
        "Westport mourns climber killed on Mount Ardent",
        "Friends and family in Westport paid tribute on Sunday to Liam Forde, the 34-year-old "
        "climber who died in a fall on Mount Ardent.\n"
        "Forde taught at a local school and led a climbing club for teenagers. His family "
        "thanked the rescue team and the rangers.",
    ),
    (
        "Mount Ardent fall is third climbing death this year",
        "The death of Liam Forde on Mount Ardent on Saturday is the third fatal climbing "
        "accident on the mountain this year, rangers said.\n"
        "Forde, 34, from Westport, fell from the north ridge. Chief ranger Ana Duarte said "
        "numbers of climbers on the mountain had doubled in five years.",
    ),
    (
        "Police investigate Mount Ardent climbing death",
        "Police are preparing a report for the coroner on the death of Liam Forde, who fell "
        "from a ridge on Mount Ardent on Saturday.\n"
        "The 34-year-old from Westport was roped to a friend when he slipped, police said. The "
        "rescue helicopter recovered his body on Sunday.",
    ),
]

# The shipped threshold (``ClusterParams.split_threshold``) and part size.
PATCH_OLD = [  # an emergency browser patch, reported without a year
    (
        "Microsoft rushes out emergency fix for Internet Explorer flaw",
        "Microsoft released an emergency security update for Internet Explorer on Wednesday to "
        "close a flaw that attackers were already using to take over Windows computers.\n"
        "The company said users who visited a booby-trapped website could have malicious code "
        "installed on their machines. It urged customers to install the update immediately.\n"
        "Security researchers said the attacks were aimed at stealing passwords for online games.",
    ),
    (
        "Internet Explorer users urged to install out-of-band patch",
        "Users of Internet Explorer should install an out-of-band patch that Microsoft issued on "
        "Wednesday, security experts said, after attacks on the browser spread quickly.\n"
        "The flaw lets an attacker run code on a Windows computer when its user opens a rigged "
        "web page. Microsoft rarely releases fixes outside its monthly schedule.\n"
        "The company said the update was available through Windows Update.",
    ),
    (
        "Microsoft patches Internet Explorer hole exploited by hackers",
        "Microsoft on Wednesday patched a hole in Internet Explorer that hackers were exploiting "
        "to install malicious software on Windows computers.\n"
        "The emergency update covers every supported version of the browser, the company said. "
        "Thousands of websites had been rigged to exploit the flaw.\n"
        "Microsoft advised customers to turn on automatic updates.",
    ),
    (
        "Emergency Internet Explorer update closes zero-day flaw",
        "An emergency update for Internet Explorer released by Microsoft on Wednesday closes a "
        "zero-day flaw that criminals used to take control of Windows computers.\n"
        "Visiting a rigged website was enough to be infected, researchers said. The company "
        "broke with its monthly patch cycle to release the fix.\n"
        "Microsoft said customers with automatic updates would be protected.",
    ),
]
PATCH_NEW = [  # the same kind of patch, years later, dated
    (
        "Microsoft issues emergency Internet Explorer fix for zero-day attacks",
        "Microsoft issued an emergency security update for Internet Explorer on Monday, 30 "
        "September 2013, to close a flaw attackers were using to take over Windows computers.\n"
        "Users who visited a booby-trapped website could have malicious code installed on their "
        "machines, the company said, and it urged customers to install the update.\n"
        "Security researchers said the attacks targeted companies in Japan.",
    ),
    (
        "Internet Explorer out-of-band patch released after attacks",
        "Microsoft released an out-of-band patch for Internet Explorer on Monday after attacks "
        "on the browser spread, in its second emergency fix of 2013.\n"
        "The flaw lets an attacker run code on a Windows computer when its user opens a rigged "
        "web page. Microsoft rarely releases fixes outside its monthly schedule.\n"
        "The update is available through Windows Update.",
    ),
    (
        "Microsoft patches Internet Explorer hole used in targeted attacks",
        "Microsoft on Monday patched a hole in Internet Explorer that hackers were exploiting "
        "to install malicious software on Windows computers, it said in September 2013.\n"
        "The emergency update covers every supported version of the browser. Researchers had "
        "found websites rigged to exploit the flaw.\n"
        "Microsoft advised customers to turn on automatic updates.",
    ),
    (
        "Emergency Internet Explorer update closes zero-day hole",
        "An emergency update for Internet Explorer released by Microsoft on Monday closes a "
        "zero-day hole that attackers used to take control of Windows computers in 2013.\n"
        "Visiting a rigged website was enough to be infected, researchers said. The company "
        "broke with its monthly patch cycle to release the fix.\n"
        "Microsoft said customers with automatic updates would be protected.",
    ),
]

PARAMS = ClusterParams()


def _feats(articles: list[tuple[str, str]]) -> list[DocFeatures]:
    return [features(title, text, "en") for title, text in articles]


def _stats(*groups: list[DocFeatures]) -> CorpusStats:
    stats = CorpusStats()
    for title, text in BACKGROUND:
        stats.add(features(title, text, "en"))
    for group in groups:
        stats.add_all(group)
    return stats


def _weigher(stats: CorpusStats, docs: list[DocFeatures]) -> Weigher:
    weigher = Weigher(stats)
    weigher.prime_docs(docs)
    return weigher


def _dev(dev_id: int, docs: list[DocFeatures], start: int = 0) -> DevelopmentView:
    members = tuple(
        Member(100 * dev_id + i, f, T0 + timedelta(minutes=10 * (start + i)))
        for i, f in enumerate(docs)
    )
    return DevelopmentView(dev_id, members[0].seen, members[-1].seen, members)


def test_local_weights_ignore_what_every_member_shares() -> None:
    docs = _feats(PRICE + KOWAL)
    vectors = local_vectors(docs, _weigher(_stats(docs), docs))
    # "hawks" is in all eight: it separates nothing and weighs nothing.
    assert all("hawk" in d.words for d in docs)
    assert all("w:hawk" not in v for v in vectors) and any("w:arrest" in v for v in vectors)
    assert all("w:kowal" in v for v in vectors[4:]) and all("w:kowal" not in v for v in vectors[:4])


def test_the_split_separates_two_players_arrested_the_same_day() -> None:
    docs = _feats(PRICE + KOWAL)
    found = contrastive_split(docs, _weigher(_stats(docs), docs), PARAMS.split_min_part)
    assert found is not None
    a, b, score = found
    assert (a, b) == ([0, 1, 2, 3], [4, 5, 6, 7])
    assert score >= PARAMS.split_threshold
    # Interleaved (as a stream would bring them), the same parts.
    mixed = [docs[i] for i in (0, 4, 1, 5, 6, 2, 7, 3)]
    parts = bisect(local_vectors(mixed, _weigher(_stats(docs), docs)))
    assert parts == ([0, 2, 5, 7], [1, 3, 4, 6])


def test_one_event_told_from_several_angles_is_not_split() -> None:
    docs = _feats(CLIMBER)
    weigher = _weigher(_stats(docs), docs)
    found = contrastive_split(docs, weigher, PARAMS.split_min_part)
    assert found is None or found[2] < PARAMS.split_threshold
    # Whatever the part sizes, the best cut's halves share their headline terms.
    a, b = bisect(local_vectors(docs, weigher))
    assert contrast([d.lead for d in docs], a, b) < PARAMS.split_threshold


def test_contrast_is_the_weaker_part_s_best_own_headline_term() -> None:
    leads = [{"price": 1.0, "hawk": 1.0}, {"price": 1.0}, {"kowal": 1.0, "hawk": 1.0}, {}]
    # Part 0 ("price" in both, in none of part 1): 1.0; part 1: "kowal" in one of two, 0.5.
    assert contrast(leads, [0, 1], [2, 3]) == 0.5
    assert contrast(leads, [0, 1], []) == 0.0


def test_regroup_splits_look_alikes_the_pair_model_keeps_together() -> None:
    price, kowal = _feats(PRICE), _feats(KOWAL)
    stats = _stats(price, kowal)
    # As decisions made one at a time left them: one development holding both arrests.
    joined = _dev(1, [f for pair in zip(price, kowal, strict=True) for f in pair])
    off = replace(PARAMS, split_threshold=2.0)
    assert regroup([joined], stats, off) == []  # the pair probabilities alone keep them
    moves = regroup([joined], stats, PARAMS)
    # Kowal's four reports (odd positions) are split off together as one new development.
    assert sorted(m.item_id for m in moves) == [101, 103, 105, 107]
    assert {(m.from_development, m.to_development) for m in moves} == {(1, None)}
    assert len({m.group for m in moves}) == 1
    # Deterministic, and the next regroup of the result moves nothing.
    assert regroup([joined], stats, PARAMS) == moves
    apart = [_dev(1, price), _dev(2, kowal, start=1)]
    assert regroup(apart, stats, PARAMS) == []


def test_regroup_leaves_one_event_whole() -> None:
    climber = _feats(CLIMBER)
    stats = _stats(climber)
    assert regroup([_dev(1, climber)], stats, PARAMS) == []


def test_find_merges_keeps_apart_what_regrouping_split() -> None:
    price, kowal = _feats(PRICE), _feats(KOWAL)
    stats = _stats(price, kowal)
    devs = [_dev(1, price), _dev(2, kowal, start=1)]
    eager = replace(PARAMS, merge_threshold=0.0)
    assert find_merges(devs, stats, eager) == [(1, 2)]
    assert find_merges(devs, stats, eager, apart=[(2, 1)]) == []


def _names(docs: list[DocFeatures]) -> Counter[str]:
    return Counter(n for d in docs for n in set(d.names))


def test_name_contrast_is_the_weaker_group_s_best_own_name() -> None:
    a = Counter({"price": 4, "hawks": 4})
    b = Counter({"kowal": 3, "hawks": 4, "price": 1})
    # Group a: "price" in 4 of 4, in 1 of b's 4: 0.75; group b: "kowal" 3 of 4, none of a: 0.75.
    assert name_contrast(a, 4, b, 4) == 0.75
    # A group whose names the other carries as often has none of its own.
    assert name_contrast(Counter({"hawks": 4}), 4, a, 4) == 0.0
    price, kowal = _feats(PRICE), _feats(KOWAL)
    assert name_contrast(_names(price), 4, _names(kowal), 4) == 1.0  # "price" / "kowal"


def _linkage(names: dict[int, set[str]], veto: float, n: int = 8) -> list[list[int]]:
    sums = {a: {b: 0.9 for b in range(n) if b != a} for a in range(n)}  # all look alike
    return average_linkage(
        range(n), dict.fromkeys(range(n), 1), sums, 0.4, names=names, name_veto=veto
    )


def test_the_veto_keeps_two_groups_with_names_of_their_own_apart() -> None:
    names = {i: {"hawks", "price" if i < 4 else "kowal"} for i in range(8)}
    assert _linkage(names, 0.7) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert _linkage(names, 2.0) == [list(range(8))]  # off
    # Groups of three are too small to veto.
    small = {i: {"hawks", "price" if i < 3 else "kowal"} for i in range(6)}
    assert _linkage(small, 0.7, 6) == [list(range(6))]


def test_the_veto_joins_when_one_group_has_no_name_of_its_own() -> None:
    # The second four carry only names the first four carry too: one event, some outlets terser.
    names = {i: {"hawks", "price"} | ({"darnell"} if i < 4 else set()) for i in range(8)}
    assert _linkage(names, 0.7) == [list(range(8))]
    # A name of its own in only half of a group is not enough at 0.7.
    half = {
        i: {"hawks"} | ({"price"} if i < 4 else {"kowal"} if i < 6 else set()) for i in range(8)
    }
    assert _linkage(half, 0.7) == [list(range(8))]


# Two events of four articles interleaved as eight single-article developments (items 100-800):
# kept apart, the first event's go to development 1 and the second's to development 2.
APART = {(300, 1), (500, 1), (700, 1), (400, 2), (600, 2), (800, 2)}


def _interleaved_singles(a: list[DocFeatures], b: list[DocFeatures]) -> list[DevelopmentView]:
    interleaved = [f for pair in zip(a, b, strict=True) for f in pair]
    return [_dev(i + 1, [f], start=i) for i, f in enumerate(interleaved)]


def assert_all_joined(moves: list[Move]) -> None:
    assert {m.to_development for m in moves} == {1}
    assert sorted(m.item_id for m in moves) == [200, 300, 400, 500, 600, 700, 800]


def assert_kept_apart_only_with_veto(
    a: list[DocFeatures], b: list[DocFeatures], params: ClusterParams, off: ClusterParams
) -> None:
    """Interleaved single articles of two events regroup into the two (``a``'s, developments
    1, 3, 5, 7, to 1; ``b``'s, 2, 4, 6, 8, to 2) with ``params``; with the veto ``off`` the
    pair probabilities join all eight into one development."""
    stats = _stats(a, b)
    singles = _interleaved_singles(a, b)
    moves = regroup(singles, stats, params)
    assert {(m.item_id, m.to_development) for m in moves} == APART
    assert_all_joined(regroup(singles, stats, off))


def test_regroup_with_the_veto_keeps_look_alike_arrests_apart() -> None:
    # Each article its own development, as decisions might have left them (interleaved):
    # Price's go to development 1, Kowal's to 2.
    no_split = replace(PARAMS, split_threshold=2.0)  # the veto alone
    assert PARAMS.name_veto <= 1.0
    assert_kept_apart_only_with_veto(
        _feats(PRICE), _feats(KOWAL), no_split, replace(no_split, name_veto=2.0)
    )


def test_regroup_with_the_veto_still_joins_one_event_split_in_two() -> None:
    climber = _feats(CLIMBER)
    stats = _stats(climber)
    # Both halves name Liam Forde, Mount Ardent and Westport: no name of their own.
    assert name_contrast(_names(climber[:4]), 4, _names(climber[4:]), 4) < PARAMS.name_veto
    two = [_dev(1, climber[:4]), _dev(2, climber[4:], start=4)]
    moves = regroup(two, stats, PARAMS)
    assert sorted(m.item_id for m in moves) == [200, 201, 202, 203]
    assert {m.to_development for m in moves} == {1}


def test_year_contrast_is_one_group_s_year_the_other_never_mentions() -> None:
    # One-sided: the other group may mention no year at all.
    assert year_contrast(Counter({2013: 4}), 4, Counter(), 4) == 1.0
    assert year_contrast(Counter(), 4, Counter({2013: 3}), 4) == 0.75
    # A year the other group mentions in more than 10 % of its articles does not count.
    assert year_contrast(Counter({2013: 4}), 4, Counter({2013: 1}), 4) == 0.0
    assert year_contrast(Counter({2013: 4}), 4, Counter({2013: 1}), 10) == 1.0
    # Both groups dated by the same year (the latest that half or more of each mention): a
    # background year one of them cites does not count (a 1935 dairy building burnt in 2012)...
    assert year_contrast(Counter({2013: 4, 2010: 1}), 4, Counter({2013: 5}), 5) == 0.0
    assert year_contrast(Counter({2012: 4, 1935: 3}), 4, Counter({2012: 5}), 6) == 0.0
    assert year_contrast(Counter({2012: 1, 1935: 3}), 4, Counter({2012: 5}), 6) == 0.75
    # ...while a shared background year does not make two events one: a 2013 earthquake in a
    # region the 2004 tsunami hit, against reports of a 2004 earthquake.
    assert year_contrast(Counter({2004: 6, 2002: 3}), 7, Counter({2004: 14, 2013: 14}), 14) == 1.0
    assert date_year(Counter({2004: 14, 2013: 14, 2009: 3}), 14) == 2013
    assert date_year(Counter({2008: 4}), 17) is None


def _year_linkage(years: dict[int, set[int]], veto: float, n: int = 8) -> list[list[int]]:
    sums = {a: {b: 0.9 for b in range(n) if b != a} for a in range(n)}  # all look alike
    return average_linkage(
        range(n), dict.fromkeys(range(n), 1), sums, 0.4, years=years, year_veto=veto
    )


def test_the_year_veto_keeps_a_dated_group_apart_from_an_undated_one() -> None:
    years = {i: {2013} if i < 4 else set() for i in range(8)}
    assert _year_linkage(years, 0.8) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert _year_linkage(years, 2.0) == [list(range(8))]  # off
    # Groups of three are too small to veto.
    small = {i: {2013} if i < 3 else set() for i in range(6)}
    assert _year_linkage(small, 0.8, 6) == [list(range(6))]


def test_the_year_veto_joins_halves_of_one_event() -> None:
    # Both halves date the event (one article of the second half also recalls an older year).
    dated = {i: {2013} | ({2009} if i == 5 else set()) for i in range(8)}
    assert _year_linkage(dated, 0.8) == [list(range(8))]
    # A year in half of one group and none of the other is not enough at 0.8.
    half = {i: {2013} if i < 2 else set() for i in range(8)}
    assert _year_linkage(half, 0.8) == [list(range(8))]
    # A background year in most of one half (the year a burnt building was built) does not keep
    # it from the other when both are dated by the same year; with the halves dated by two
    # different years it does.
    background = {i: {2012} | ({1935} if i < 3 else set()) for i in range(8)}
    assert _year_linkage(background, 0.7) == [list(range(8))]
    two_dates = {i: ({2012} if i < 4 else {2013}) | ({1935} if i < 3 else set()) for i in range(8)}
    assert _year_linkage(two_dates, 0.7) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_regroup_with_the_year_veto_keeps_two_patches_years_apart() -> None:
    old, new = _feats(PATCH_OLD), _feats(PATCH_NEW)
    assert all(not f.years for f in old) and all(f.years == (2013,) for f in new)
    # Same names, so the name veto cannot tell them apart.
    assert name_contrast(_names(old), 4, _names(new), 4) < PARAMS.name_veto
    assert PARAMS.year_veto <= 1.0
    # The undated reports go to development 1, the 2013 ones to 2; without the veto the pair
    # probabilities (and the split) join all eight.
    assert_kept_apart_only_with_veto(old, new, PARAMS, replace(PARAMS, year_veto=2.0))


def test_regroup_cuts_a_development_holding_both_patches() -> None:
    # Decisions joined all eight into one development: the regrouping into the two events is no
    # better than it by the margin (the cross pairs are probable), yet the year veto cuts it.
    old, new = _feats(PATCH_OLD), _feats(PATCH_NEW)
    stats = _stats(old, new)
    one = [_dev(1, [f for pair in zip(old, new, strict=True) for f in pair])]
    moves = regroup(one, stats, PARAMS, focus=[1])
    # The 2013 reports (items 101, 103, 105, 107) leave together for a new development.
    assert sorted(m.item_id for m in moves) == [101, 103, 105, 107]
    assert {m.to_development for m in moves} == {None}
    assert len({m.group for m in moves}) == 1
    assert regroup(one, stats, replace(PARAMS, year_veto=2.0), focus=[1]) == []
