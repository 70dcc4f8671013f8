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

FUNNEL = ("signup", "verify_email", "create_project", "invite_teammate", "activate")
VARIANTS = ("control", "short_form", "guided_tour", "video_intro", "checklist")
FEATURES = ("view_dashboard", "create_report", "export_csv", "use_integration", "share_dashboard")
PLATFORMS = (("web", 0.55), ("ios", 0.25), ("android", 0.20))
COUNTRIES = (("US", 0.35), ("GB", 0.12), ("DE", 0.12), ("IN", 0.15), ("BR", 0.10), ("FR", 0.08),
             ("CA", 0.08))
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
    persons: int = 4000
    days: int = 56
    start: date = date(2026, 9, 1)
    seed: int = 42
    rates: StepRates = field(default_factory=StepRates)
    duplicate_rate: float = 0.01
    malformed_per_day: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DemoConfig:
        return cls(
            persons=int(env.get("DEMO_PERSONS", cls.persons)),
            days=int(env.get("DEMO_DAYS", cls.days)),
            start=date.fromisoformat(env.get("DEMO_START", cls.start.isoformat())),
            seed=int(env.get("DEMO_SEED", cls.seed)),
        )

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days - 1)


def expected_activation_rate(rates: StepRates, variant: str, android_share: float = 0.20) -> float:
    """The true probability that a person who signed up reaches ``activate`` (any delay).

    Averaged over platforms with the generator's platform shares; every step is always taken within
    the 7-day onboarding window (see ``_step_delay``), so this is also the 7- and 14-day rate.
    """
    create = (1 - android_share) * rates.create_project + android_share * rates.android_create_project
    invite, activate = rates.invite_teammate, rates.activate
    if variant == "guided_tour":
        invite, activate = rates.guided_tour_invite_teammate, rates.guided_tour_activate
    return rates.verify_email * create * invite * activate


def _choice(rng: np.random.Generator, options: tuple) -> str:
    names, weights = zip(*options, strict=True)
    return names[rng.choice(len(names), p=np.array(weights) / sum(weights))]


class _Person:
    """Collects one person's events; times are seconds since the data set's start."""

    def __init__(self, index: int, rng: np.random.Generator, horizon: float) -> None:
        self.rng = rng
        self.horizon = horizon
        self.anonymous_id = f"anon-{index:07d}"
        self.user_id = f"user-{index:07d}"
        self.identified = False
        self.platform = _choice(rng, PLATFORMS)
        self.country = _choice(rng, COUNTRIES)
        channel_names = tuple(CHANNELS)
        self.channel = channel_names[
            rng.choice(len(channel_names), p=[CHANNELS[c][0] for c in channel_names])
        ]
        self.events: list[tuple[float, str, bool, dict]] = []

    def add(self, t: float, name: str, **properties) -> bool:
        if t >= self.horizon:
            return False
        self.events.append((t, name, self.identified, properties))
        return True


def _step_delay(rng: np.random.Generator, step: str) -> float:
    """Seconds between onboarding steps: minutes for most, hours to days for inviting a teammate."""
    if step == "invite_teammate":
        return float(min(rng.exponential(18 * 3600), 5 * 86400))
    return float(min(rng.exponential(240) + 20, 3600))


def _simulate(person: _Person, arrival: float, cfg: DemoConfig) -> None:
    rng, rates = person.rng, cfg.rates
    _, utm_source, utm_medium, referrer = CHANNELS[person.channel]
    t = arrival
    for visit in range(int(rng.integers(1, 4))):
        props = {"page": LANDING_PAGES[int(rng.integers(len(LANDING_PAGES)))]}
        if visit == 0:
            props |= {k: v for k, v in (("utm_source", utm_source), ("utm_medium", utm_medium),
                                        ("utm_campaign", "autumn_launch" if utm_source else None),
                                        ("referrer", referrer)) if v}
        person.add(t, "page_view", **props)
        t += float(rng.exponential(90) + 10)
    if rng.random() >= rates.signup:
        return

    person.identified = True
    variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
    plan = _choice(rng, PLANS)
    person.add(t, "signup", plan=plan, variant=variant, experiment="onboarding_v2")
    guided = variant == "guided_tour"
    step_rate = {
        "verify_email": rates.verify_email,
        "create_project": rates.android_create_project
        if person.platform == "android"
        else rates.create_project,
        "invite_teammate": rates.guided_tour_invite_teammate if guided else rates.invite_teammate,
        "activate": rates.guided_tour_activate if guided else rates.activate,
    }
    reached = "signup"
    for step in FUNNEL[1:]:
        t += _step_delay(rng, step)
        if rng.random() >= step_rate[step]:
            if step == "create_project" and person.platform == "android" and rng.random() < 0.8:
                for _ in range(int(rng.integers(1, 4))):
                    person.add(t, "error", step="create_project", message="project_create_failed")
                    t += float(rng.exponential(30) + 5)
                person.add(t, "view_help", topic="create_project")
            break
        if not person.add(t, step, plan=plan) and step != "activate":
            break
        reached = step

    if reached == "signup":
        return
    # Later activity: active persons come back on a number of days, integration users more often.
    uses_integration = reached in ("invite_teammate", "activate") and rng.random() < 0.35
    return_prob = 0.22 + (0.20 if reached == "activate" else 0.0) + (0.25 if uses_integration else 0.0)
    day = t // 86400
    paid = False
    while True:
        day += 1 + int(rng.geometric(0.35))
        if day * 86400 >= person.horizon or rng.random() >= return_prob + 0.35:
            break
        if rng.random() >= return_prob / (return_prob + 0.35):
            continue
        s = day * 86400 + float(rng.normal(14, 3) % 24) * 3600
        for _ in range(int(rng.integers(1, 6))):
            feature = FEATURES[int(rng.integers(len(FEATURES) - 1))]
            if uses_integration and rng.random() < 0.4:
                feature = "use_integration"
            person.add(s, feature)
            s += float(rng.exponential(300) + 15)
        if not paid and plan in PLAN_PRICE and reached == "activate" and rng.random() < 0.3:
            person.add(s, "purchase", revenue=PLAN_PRICE[plan], currency="USD", plan=plan)
            paid = True


@lru_cache(maxsize=4)
def generate(cfg: DemoConfig) -> pd.DataFrame:
    """All the demo's records (contract fields, raw values), sorted by time."""
    rng = np.random.default_rng(cfg.seed)
    horizon = cfg.days * 86400.0
    origin = datetime.combine(cfg.start, datetime.min.time(), tzinfo=UTC)
    rows: list[dict] = []
    serial = 0
    for index in range(cfg.persons):
        person = _Person(index, rng, horizon)
        # Arrivals spread over the period, more on weekdays, mostly in daytime (UTC).
        arrival_day = int(rng.integers(cfg.days))
        if (cfg.start + timedelta(days=arrival_day)).weekday() >= 5 and rng.random() < 0.4:
            arrival_day = max(0, arrival_day - 2)
        arrival = arrival_day * 86400 + float(np.clip(rng.normal(13, 4), 0, 23.9)) * 3600
        _simulate(person, arrival, cfg)
        for t, name, identified, props in person.events:
            serial += 1
            rows.append(
                {
                    "event_id": f"evt-{cfg.seed}-{serial:09d}",
                    "event_name": name,
                    "event_time": (origin + timedelta(seconds=t)).isoformat(timespec="milliseconds"),
                    "user_id": person.user_id if identified else None,
                    "anonymous_id": person.anonymous_id,
                    "session_id": None,
                    "platform": person.platform,
                    "country": person.country,
                    "properties": json.dumps(props, sort_keys=True),
                    "day": cfg.start + timedelta(days=int(t // 86400)),
                }
            )
    frame = pd.DataFrame(rows)
    # Exact re-sends: the same record delivered twice.
    resent = frame.sample(frac=cfg.duplicate_rate, random_state=cfg.seed)
    frame = pd.concat([frame, resent], ignore_index=True)
    frame = pd.concat([frame, _malformed(cfg, rng)], ignore_index=True)
    return frame.sort_values(["day", "event_time", "event_id"], kind="stable").reset_index(drop=True)


def _malformed(cfg: DemoConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Per day: a record with no event name, one with a time that does not parse, one with no ids."""
    rows = []
    kinds = ("no_name", "bad_time", "no_ids")
    for offset in range(cfg.days):
        day = cfg.start + timedelta(days=offset)
        for k in range(cfg.malformed_per_day):
            kind = kinds[k % len(kinds)]
            when = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
                seconds=int(rng.integers(86400))
            )
            rows.append(
                {
                    "event_id": f"bad-{cfg.seed}-{offset:04d}-{k}",
                    "event_name": None if kind == "no_name" else "page_view",
                    "event_time": f"{day.isoformat()}T25:61:00" if kind == "bad_time" else when.isoformat(),
                    "user_id": None,
                    "anonymous_id": None if kind == "no_ids" else f"anon-bad-{offset}-{k}",
                    "session_id": None,
                    "platform": "web",
                    "country": "US",
                    "properties": "{}",
                    "day": day,
                }
            )
    return pd.DataFrame(rows)


class DemoSource:
    name = "demo"

    def __init__(self, config: DemoConfig | None = None) -> None:
        self.config = config or DemoConfig()

    def available_days(self) -> list[date]:
        return [self.config.start + timedelta(days=i) for i in range(self.config.days)]

    def fetch_day(self, day: date) -> pd.DataFrame:
        frame = generate(self.config)
        return frame[frame["day"] == day].drop(columns="day").reset_index(drop=True)
