"""A deterministic, seeded generator of a realistic SaaS product's events.

Persons arrive over ``days`` days from ``start``. Most browse anonymously first (page views with
utm_* on the landing), then sign up (the signup event carries both ids, which is what identity
stitching links), go through the onboarding funnel ``signup -> verify_email -> create_project ->
invite_teammate -> activate``, use features, return on later days, and some pay.

Planted findings (the analyses must find them; the README lists them):

* **Android's create_project step is broken**: Android persons who verified their email reach
  ``create_project`` with probability ``android_create_project`` (0.30) against
  ``create_project`` (0.75) elsewhere, and most of those who leave hit ``error`` events first.
* **The ``guided_tour`` variant works**: of the 5-variant ``onboarding_v2`` experiment assigned at
  signup (``properties.variant``), ``guided_tour`` raises the later onboarding steps; the other
  three treatments do nothing. :func:`expected_activation_rate` gives the true rates.
* **Integrations retain**: persons who use ``use_integration`` come back on more later days.
* A few exact re-sends (same ``event_id``) and malformed records (no name, a bad time, no ids) per
  day, for the dedupe and the quarantine.

``activity`` (``DEMO_ACTIVITY``, default 1) sets how busy a return visit is: its 1-5 feature uses
are multiplied by it, and the gaps between them shortened by as much. At 1 a person makes about
5.7 events in 30 days; the benchmark uses about 27 to reach the ~40 of a busy product
(bench/README.md). Onboarding, and so every planted finding, is the same at any activity.

Everything is drawn from one ``numpy`` generator seeded by ``seed``, so the same config gives the
same events, byte for byte; a day's records are the slice of the whole data set that falls on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.ingest.contract import RECORD_FIELDS

FUNNEL = ("signup", "verify_email", "create_project", "invite_teammate", "activate")
VARIANTS = ("control", "short_form", "guided_tour", "video_intro", "checklist")
FEATURES = ("view_dashboard", "create_report", "export_csv", "use_integration", "share_dashboard")
PLATFORMS = (("web", 0.55), ("ios", 0.25), ("android", 0.20))
COUNTRIES = (
    ("US", 0.35),
    ("GB", 0.12),
    ("DE", 0.12),
    ("IN", 0.15),
    ("BR", 0.10),
    ("FR", 0.08),
    ("CA", 0.08),
)
PLANS = (("free", 0.70), ("pro", 0.25), ("enterprise", 0.05))
PLAN_PRICE = {"pro": 29.0, "enterprise": 499.0}
# channel: (share, utm_source, utm_medium, referrer)
CHANNELS = {
    "organic_search": (0.30, None, None, "https://www.google.com/"),
    "paid_search": (0.20, "google", "cpc", "https://www.google.com/"),
    "social": (0.15, "linkedin", "social", "https://www.linkedin.com/"),
    "referral": (0.10, None, None, "https://news.ycombinator.com/"),
    "email": (0.10, "newsletter", "email", None),
    "direct": (0.15, None, None, None),
}
LANDING_PAGES = ("/", "/pricing", "/features", "/blog/onboarding-analytics")


@dataclass(frozen=True)
class StepRates:
    """Probability of taking each onboarding step, given the previous one was taken."""

    signup: float = 0.72
    verify_email: float = 0.85
    create_project: float = 0.75
    android_create_project: float = 0.30
    invite_teammate: float = 0.60
    activate: float = 0.70
    guided_tour_invite_teammate: float = 0.72
    guided_tour_activate: float = 0.90


@dataclass(frozen=True)
class DemoConfig:
    # 10,000 persons: enough that the planted experiment is found under any seed (about 900 analysed
    # persons per variant; at 4,000, seed 42's draw left guided_tour short of significance after
    # Holm), while `make run` stays around two minutes.
    persons: int = 10000
    days: int = 56
    start: date = date(2026, 9, 1)
    seed: int = 42
    rates: StepRates = field(default_factory=StepRates)
    duplicate_rate: float = 0.01
    malformed_per_day: int = 3
    activity: float = 1.0

    def __post_init__(self) -> None:
        if not self.activity > 0:
            raise ValueError(f"DEMO_ACTIVITY must be above 0, got {self.activity}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DemoConfig:
        return cls(
            persons=int(env.get("DEMO_PERSONS", cls.persons)),
            days=int(env.get("DEMO_DAYS", cls.days)),
            start=date.fromisoformat(env.get("DEMO_START", cls.start.isoformat())),
            seed=int(env.get("DEMO_SEED", cls.seed)),
            activity=float(env.get("DEMO_ACTIVITY", cls.activity)),
        )

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days - 1)


def expected_activation_rate(rates: StepRates, variant: str, android_share: float = 0.20) -> float:
    """The true probability that a person who signed up reaches ``activate`` (any delay).

    Averaged over platforms with the generator's platform shares; every step is always taken within
    the 7-day onboarding window (see ``_step_delay``), so this is also the 7- and 14-day rate.
    """
    create = (
        1 - android_share
    ) * rates.create_project + android_share * rates.android_create_project
    invite, activate = rates.invite_teammate, rates.activate
    if variant == "guided_tour":
        invite, activate = rates.guided_tour_invite_teammate, rates.guided_tour_activate
    return rates.verify_email * create * invite * activate


# Event names and the properties' JSON texts are small tables; events refer to them by code.
EVENT_NAMES = ("page_view", *FUNNEL, "error", "view_help", *FEATURES, "purchase")
_NAME = {name: code for code, name in enumerate(EVENT_NAMES)}
_PLANS = tuple(name for name, _ in PLANS)
_CHANNELS = tuple(CHANNELS)


def _weights(options: tuple) -> np.ndarray:
    weights = np.array([w for _, w in options])
    return weights / weights.sum()


class _Properties:
    """The distinct properties texts (``json.dumps(..., sort_keys=True)``), interned by code."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, **properties) -> int:
        text = json.dumps(properties, sort_keys=True)
        if text not in self._codes:
            self._codes[text] = len(self.texts)
            self.texts.append(text)
        return self._codes[text]


PROPERTIES = _Properties()
# page_view: page x (channel on the first visit, or 6 = a later visit, no utm)
_PAGE_VIEW = np.empty((len(LANDING_PAGES), len(_CHANNELS) + 1), dtype=np.int16)
for _p, _page in enumerate(LANDING_PAGES):
    _PAGE_VIEW[_p, len(_CHANNELS)] = PROPERTIES.code(page=_page)
    for _c, _channel in enumerate(_CHANNELS):
        _, _src, _medium, _ref = CHANNELS[_channel]
        _extra = {
            k: v
            for k, v in (
                ("utm_source", _src),
                ("utm_medium", _medium),
                ("utm_campaign", "autumn_launch" if _src else None),
                ("referrer", _ref),
            )
            if v
        }
        _PAGE_VIEW[_p, _c] = PROPERTIES.code(page=_page, **_extra)
_SIGNUP = np.array(
    [
        [
            PROPERTIES.code(plan=plan, variant=variant, experiment="onboarding_v2")
            for variant in VARIANTS
        ]
        for plan in _PLANS
    ],
    dtype=np.int16,
)
_STEP = np.array([PROPERTIES.code(plan=plan) for plan in _PLANS], dtype=np.int16)
_ERROR = PROPERTIES.code(step="create_project", message="project_create_failed")
_HELP = PROPERTIES.code(topic="create_project")
_NONE = PROPERTIES.code()
_PURCHASE = np.array(
    [
        PROPERTIES.code(revenue=PLAN_PRICE[p], currency="USD", plan=p) if p in PLAN_PRICE else _NONE
        for p in _PLANS
    ],
    dtype=np.int16,
)


class _Events:
    """Columnar events under construction: blocks of (person, seconds, name, properties,
    identified)."""

    def __init__(self) -> None:
        self.blocks: list[tuple[np.ndarray, ...]] = []

    def add(self, person, t, name, properties, identified) -> None:
        n = len(person)
        self.blocks.append(
            (
                np.asarray(person, dtype=np.int32),
                np.asarray(t, dtype=np.float64),
                np.broadcast_to(np.asarray(name, dtype=np.int8), n),
                np.broadcast_to(np.asarray(properties, dtype=np.int16), n),
                np.broadcast_to(np.asarray(identified, dtype=bool), n),
            )
        )

    def columns(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate([b[i] for b in self.blocks]) for i in range(5))


def _step_delays(rng: np.random.Generator, step: str, n: int) -> np.ndarray:
    """Seconds between onboarding steps: minutes for most, hours to days for inviting a teammate."""
    if step == "invite_teammate":
        return np.minimum(rng.exponential(18 * 3600, n), 5 * 86400)
    return np.minimum(rng.exponential(240, n) + 20, 3600)


def _offsets_within(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., k-1 for each group of ``counts`` (the position of each repeated row in its
    group)."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def _cumulative_before(gaps: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group of ``counts`` consecutive ``gaps``: the sum of the gaps before each element, and
    the group's total (exclusive prefix sums restarted at each group)."""
    running = np.cumsum(gaps)
    ends = np.cumsum(counts)
    group_start = np.concatenate([[0.0], running[ends[:-1] - 1]]) if len(counts) else running[:0]
    before = running - gaps - np.repeat(group_start, counts)
    totals = running[ends - 1] - group_start if len(counts) else running[:0]
    return before, totals


def _simulate(cfg: DemoConfig, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Every person's events, each random quantity drawn for all persons at once.

    The rules are the ones the module docstring describes; the returned columns are person index,
    seconds since the start, event-name code, properties code and whether the event carries the
    user id, in no particular order.
    """
    n, rates, horizon = cfg.persons, cfg.rates, cfg.days * 86400.0
    everyone = np.arange(n, dtype=np.int32)
    platform = rng.choice(len(PLATFORMS), size=n, p=_weights(PLATFORMS))
    android = platform == [name for name, _ in PLATFORMS].index("android")
    country = rng.choice(len(COUNTRIES), size=n, p=_weights(COUNTRIES))
    channel = rng.choice(len(_CHANNELS), size=n, p=[CHANNELS[c][0] for c in _CHANNELS])
    # Arrivals spread over the period, more on weekdays, mostly in daytime (UTC).
    arrival_day = rng.integers(cfg.days, size=n)
    weekday = np.array([(cfg.start + timedelta(days=d)).weekday() for d in range(cfg.days)])
    moved = (weekday[arrival_day] >= 5) & (rng.random(n) < 0.4)
    arrival_day = np.where(moved, np.maximum(arrival_day - 2, 0), arrival_day)
    t = arrival_day * 86400.0 + np.clip(rng.normal(13, 4, n), 0, 23.9) * 3600

    events = _Events()
    # Anonymous browsing: 1-3 page views, the first carrying the channel's utm_* and referrer.
    visits = rng.integers(1, 4, size=n)
    for visit in range(3):
        page = rng.integers(len(LANDING_PAGES), size=n)
        gap = rng.exponential(90, n) + 10
        on = visits > visit
        landing = channel if visit == 0 else np.full(n, len(_CHANNELS))
        events.add(
            everyone[on], t[on], _NAME["page_view"], _PAGE_VIEW[page[on], landing[on]], False
        )
        t = np.where(on, t + gap, t)

    # Signup carries both ids and the experiment's variant; the funnel follows with per-person
    # rates.
    signed = rng.random(n) < rates.signup
    variant = rng.integers(len(VARIANTS), size=n)
    plan = rng.choice(len(_PLANS), size=n, p=_weights(PLANS))
    events.add(
        everyone[signed], t[signed], _NAME["signup"], _SIGNUP[plan[signed], variant[signed]], True
    )
    guided = variant == VARIANTS.index("guided_tour")
    step_rate = {
        "verify_email": np.full(n, rates.verify_email),
        "create_project": np.where(android, rates.android_create_project, rates.create_project),
        "invite_teammate": np.where(
            guided, rates.guided_tour_invite_teammate, rates.invite_teammate
        ),
        "activate": np.where(guided, rates.guided_tour_activate, rates.activate),
    }
    reached = np.where(signed, 0, -1)  # index into FUNNEL of the last step taken
    going = signed.copy()
    for index, step in enumerate(FUNNEL[1:], start=1):
        t = np.where(going, t + _step_delays(rng, step, n), t)
        took = going & (rng.random(n) < step_rate[step])
        left = going & ~took
        if step == "create_project":
            # Most Android persons who fail here hit 1-3 errors, then look for help.
            stuck = np.flatnonzero(left & android & (rng.random(n) < 0.8))
            tries = rng.integers(1, 4, size=len(stuck))
            gaps = rng.exponential(30, int(tries.sum())) + 5
            before, total = _cumulative_before(gaps, tries)
            who = np.repeat(stuck, tries)
            events.add(who, t[who] + before, _NAME["error"], _ERROR, True)
            events.add(stuck, t[stuck] + total, _NAME["view_help"], _HELP, True)
        events.add(everyone[took], t[took], _NAME[step], _STEP[plan[took]], True)
        reached = np.where(took, index, reached)
        going = took

    # Later activity: persons past signup come back on a number of days, integration users more
    # often; a return visit is 1-5 feature uses; some activated persons on a paid plan pay once.
    invited = FUNNEL.index("invite_teammate")
    activated = reached == FUNNEL.index("activate")
    integration = (reached >= invited) & (rng.random(n) < 0.35)
    return_prob = 0.22 + np.where(activated, 0.20, 0.0) + np.where(integration, 0.25, 0.0)
    can_pay = activated & np.isin(plan, [_PLANS.index(p) for p in PLAN_PRICE])
    day = t // 86400
    active = np.flatnonzero(reached >= 1)
    while len(active):
        day[active] += 1 + rng.geometric(0.35, size=len(active))
        p = return_prob[active]
        stays = (day[active] * 86400 < horizon) & (rng.random(len(active)) < p + 0.35)
        active = active[stays]
        p = p[stays]
        back = active[rng.random(len(active)) < p / (p + 0.35)]
        start = day[back] * 86400 + (rng.normal(14, 3, len(back)) % 24) * 3600
        uses = rng.integers(1, 6, size=len(back))
        if cfg.activity != 1:
            uses = np.maximum(np.rint(uses * cfg.activity), 1).astype(uses.dtype)
        who = np.repeat(back, uses)
        feature = rng.integers(len(FEATURES) - 1, size=len(who))
        feature = np.where(
            integration[who] & (rng.random(len(who)) < 0.4),
            FEATURES.index("use_integration"),
            feature,
        )
        gaps = rng.exponential(300 / cfg.activity, len(who)) + 15
        before, total = _cumulative_before(gaps, uses)
        events.add(who, np.repeat(start, uses) + before, _NAME[FEATURES[0]] + feature, _NONE, True)
        paying = can_pay[back] & (rng.random(len(back)) < 0.3)
        pays = back[paying]
        events.add(pays, (start + total)[paying], _NAME["purchase"], _PURCHASE[plan[pays]], True)
        can_pay[pays] = False

    person, seconds, name, properties, identified = events.columns()
    kept = seconds < horizon
    return (
        person[kept],
        seconds[kept],
        name[kept],
        properties[kept],
        identified[kept],
        platform.astype(np.int8),
        country.astype(np.int8),
    )


@dataclass(frozen=True)
class _Generated:
    """The whole data set as compact columns, grouped by UTC day (``bounds[d]:bounds[d + 1]``)."""

    serial: np.ndarray
    person: np.ndarray
    millis: np.ndarray
    name: np.ndarray
    properties: np.ndarray
    identified: np.ndarray
    platform: np.ndarray  # per person
    country: np.ndarray  # per person
    bounds: np.ndarray

    def __len__(self) -> int:
        return len(self.serial)


@lru_cache(maxsize=2)
def _generated(cfg: DemoConfig) -> _Generated:
    rng = np.random.default_rng(cfg.seed)
    person, seconds, name, properties, identified, platform, country = _simulate(cfg, rng)
    origin = int(datetime.combine(cfg.start, datetime.min.time(), tzinfo=UTC).timestamp()) * 1000
    offset_millis = np.floor(seconds * 1000).astype(np.int64)
    serial = np.arange(1, len(person) + 1, dtype=np.int64)
    day = (offset_millis // 86_400_000).astype(np.int16)
    rows = np.argsort(day, kind="stable")
    bounds = np.searchsorted(day[rows], np.arange(cfg.days + 1))
    # Exact re-sends: ``duplicate_rate`` of each day's records (at least one) delivered twice.
    parts = []
    for d in range(cfg.days):
        lo, hi = bounds[d], bounds[d + 1]
        resent = (
            max(1, round(cfg.duplicate_rate * (hi - lo))) if cfg.duplicate_rate and hi > lo else 0
        )
        parts += [rows[lo:hi], np.sort(rows[lo + rng.choice(hi - lo, resent, replace=False)])]
    rows = np.concatenate(parts)
    bounds = np.searchsorted(day[rows], np.arange(cfg.days + 1))
    return _Generated(
        serial[rows],
        person[rows],
        origin + offset_millis[rows],
        name[rows],
        properties[rows],
        identified[rows],
        platform,
        country,
        bounds,
    )


def _day_table(cfg: DemoConfig, offset: int, g: _Generated | None = None) -> pa.Table:
    """The records of day ``offset`` (0-based) as raw contract values, sorted by time and id."""
    g = g or _generated(cfg)
    lo, hi = int(g.bounds[offset]), int(g.bounds[offset + 1])
    order = lo + np.lexsort((g.serial[lo:hi], g.millis[lo:hi]))
    person = pa.array(g.person[order])
    index = pc.utf8_lpad(pc.cast(person, pa.string()), 7, "0")
    # "YYYY-MM-DDTHH:MM:SS.mmm" (UTC): Arrow's cast of a naive millisecond timestamp, with the
    # space made a "T", is byte-for-byte what strftime("%Y-%m-%dT%H:%M:%S") gives on the UTC
    # timestamp, at about a tenth of the cost (strftime was most of a day's fetch at 1M persons).
    times = pc.replace_substring(
        pc.cast(pa.array(g.millis[order], pa.timestamp("ms")), pa.string()),
        " ",
        "T",
        max_replacements=1,
    )
    platforms = pa.array([name for name, _ in PLATFORMS])
    countries = pa.array([name for name, _ in COUNTRIES])
    n = len(order)
    table = pa.table(
        {
            "event_id": pc.binary_join_element_wise(
                f"evt-{cfg.seed}-",
                pc.utf8_lpad(pc.cast(pa.array(g.serial[order]), pa.string()), 9, "0"),
                "",
            ),
            "event_name": pc.take(pa.array(EVENT_NAMES), pa.array(g.name[order])),
            "event_time": pc.binary_join_element_wise(times, "+00:00", ""),
            "user_id": pc.if_else(
                pa.array(g.identified[order]),
                pc.binary_join_element_wise("user-", index, ""),
                pa.scalar(None, pa.string()),
            ),
            "anonymous_id": pc.binary_join_element_wise("anon-", index, ""),
            "session_id": pa.nulls(n, pa.string()),
            "platform": pc.take(platforms, pa.array(g.platform[g.person[order]])),
            "country": pc.take(countries, pa.array(g.country[g.person[order]])),
            "properties": pc.take(pa.array(PROPERTIES.texts), pa.array(g.properties[order])),
        }
    )
    return pa.concat_tables([table, _malformed(cfg, offset)]).combine_chunks()


def _malformed(cfg: DemoConfig, offset: int) -> pa.Table:
    """A day's contract breakers: a record with no event name, one with a time that does not parse,
    one with no ids (cycling through the three ``malformed_per_day`` times)."""
    rng = np.random.default_rng([cfg.seed, 1, offset])
    day = cfg.start + timedelta(days=offset)
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    kinds = ("no_name", "bad_time", "no_ids")
    rows = []
    for k in range(cfg.malformed_per_day):
        kind = kinds[k % len(kinds)]
        when = midnight + timedelta(seconds=int(rng.integers(86400)))
        rows.append(
            {
                "event_id": f"bad-{cfg.seed}-{offset:04d}-{k}",
                "event_name": None if kind == "no_name" else "page_view",
                "event_time": f"{day.isoformat()}T25:61:00"
                if kind == "bad_time"
                else when.isoformat(),
                "user_id": None,
                "anonymous_id": None if kind == "no_ids" else f"anon-bad-{offset}-{k}",
                "session_id": None,
                "platform": "web",
                "country": "US",
                "properties": "{}",
            }
        )
    return pa.Table.from_pylist(rows, schema=_SCHEMA)


_SCHEMA = pa.schema([(c, pa.string()) for c in RECORD_FIELDS])


def event_count(cfg: DemoConfig) -> int:
    """How many records the config generates (re-sends and malformed records included)."""
    return len(_generated(cfg)) + cfg.days * cfg.malformed_per_day


@lru_cache(maxsize=4)
def generate(cfg: DemoConfig) -> pd.DataFrame:
    """All the demo's records (contract fields, raw values) with their ``day``, sorted by day, time
    and id, simulated afresh. Meant for small configs: at scale, read a day at a time
    (:meth:`DemoSource.fetch_day`), which formats only that day's slice of the compact columns."""
    g = _generated.__wrapped__(cfg)
    frames = []
    for offset in range(cfg.days):
        frame = _day_table(cfg, offset, g).to_pandas()
        frame["day"] = cfg.start + timedelta(days=offset)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


class DemoSource:
    name = "demo"

    def __init__(self, config: DemoConfig | None = None) -> None:
        self.config = config or DemoConfig()

    def available_days(self) -> list[date]:
        return [self.config.start + timedelta(days=i) for i in range(self.config.days)]

    def fetch_table(self, day: date) -> pa.Table:
        """The day's records as an Arrow table of strings (what :meth:`fetch_day` converts)."""
        offset = (day - self.config.start).days
        if not 0 <= offset < self.config.days:
            return _SCHEMA.empty_table()
        return _day_table(self.config, offset)

    def fetch_day(self, day: date) -> pd.DataFrame:
        return self.fetch_table(day).to_pandas()
