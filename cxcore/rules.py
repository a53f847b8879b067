"""Pure rules of the narrative: no ORM here, so they are tested without a database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

import phonenumbers

from accounts.errors import InvalidInput
from cxcore.vocabulary import (
    EXPERIENCE_MAX,
    EXPERIENCE_MIN,
    FOLLOW_UP_KINDS,
    VISIT_KINDS,
    EpisodeKind,
    IdentifierKind,
    RatingScale,
)

# --- identifiers -----------------------------------------------------------------------------


def normalize_phone(raw: str, country: str) -> str:
    """E.164, reading numbers without a +prefix as the organization's country's."""
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(
            f"{raw!r} is not a phone number.", field="phone", code="invalid_phone"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(
            f"{raw!r} is not a valid phone number for {country}.",
            field="phone",
            code="invalid_phone",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_identifier(kind: str, raw: str, *, country: str) -> str:
    value = raw.strip()
    if not value:
        raise InvalidInput("Must not be blank.", field=kind, code="blank")
    if kind == IdentifierKind.PHONE:
        return normalize_phone(value, country)
    if kind == IdentifierKind.EMAIL:
        local, at, domain = value.rpartition("@")
        if not at or not local or "." not in domain or " " in value:
            raise InvalidInput(
                f"{raw!r} is not an email address.", field=kind, code="invalid_email"
            )
        return value.lower()
    # Cards and POS ids are opaque: compare them exactly, less surrounding spaces.
    return value


# --- experience ------------------------------------------------------------------------------


def validate_experience(experience: int) -> None:
    if not EXPERIENCE_MIN <= experience <= EXPERIENCE_MAX:
        raise InvalidInput(
            f"Experience is between {EXPERIENCE_MIN} and {EXPERIENCE_MAX}.", field="experience"
        )


# 1–5 stars: one step of experience per star, 3 stars neutral.
STARS5_TO_EXPERIENCE = {1: -2, 2: -1, 3: 0, 4: 1, 5: 2}
# 0–10 score, aligned with Net Promoter bands: detractors (0–6) negative, passives (7–8)
# neutral, promoters (9–10) positive; the extremes of each band go one step further.
SCORE10_TO_EXPERIENCE = {
    0: -2, 1: -2, 2: -2, 3: -2,
    4: -1, 5: -1, 6: -1,
    7: 0, 8: 0,
    9: 1,
    10: 2,
}  # fmt: skip
RATING_RANGES = {RatingScale.STARS5: (1, 5), RatingScale.SCORE10: (0, 10)}


def experience_from_rating(scale: str, value: int) -> int:
    table = STARS5_TO_EXPERIENCE if scale == RatingScale.STARS5 else SCORE10_TO_EXPERIENCE
    if scale not in RATING_RANGES:
        raise InvalidInput(f"Unknown rating scale {scale!r}.", field="rating.scale")
    if value not in table:
        low, high = RATING_RANGES[scale]
        raise InvalidInput(f"A {scale} rating is between {low} and {high}.", field="rating.value")
    return table[value]


# VADER compound score (-1..1) to experience. VADER is built for short, informal text such as
# reviews and messages; the bands are symmetric and leave a wide neutral zone.
COMPOUND_BANDS = ((-0.6, -2), (-0.2, -1), (0.2, 0), (0.6, 1))
# Kinds whose text is the customer's voice: infer whenever there is text.
FEEDBACK_KINDS = frozenset(
    {EpisodeKind.FEEDBACK, EpisodeKind.COMPLAINT, EpisodeKind.COMPLIMENT, EpisodeKind.INCIDENT}
)
# Kinds whose text is usually a staff description: infer only when it clearly carries sentiment.
INFER_WHEN_CLEAR_KINDS = frozenset({EpisodeKind.VISIT, EpisodeKind.ORDER, EpisodeKind.RESERVATION})
CLEAR_SENTIMENT = 0.2


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_score(text: str) -> float:
    return float(_analyzer().polarity_scores(text[:2000])["compound"])


def experience_from_score(compound: float) -> int:
    for upper, experience in COMPOUND_BANDS:
        if compound <= upper:
            return experience
    return 2


def infer_experience(kind: str, text: str) -> int | None:
    """Experience from the text when nothing else gives it, or None.

    A complaint or incident is never inferred better than negative, a compliment never worse
    than positive: the kind is what the person logging it already told us.
    """
    text = (text or "").strip()
    if kind in FEEDBACK_KINDS:
        experience = experience_from_score(sentiment_score(text)) if text else 0
        if kind in (EpisodeKind.COMPLAINT, EpisodeKind.INCIDENT):
            return min(experience, -1)
        if kind == EpisodeKind.COMPLIMENT:
            return max(experience, 1)
        return experience if text else None
    if kind in INFER_WHEN_CLEAR_KINDS and text:
        compound = sentiment_score(text)
        if abs(compound) >= CLEAR_SENTIMENT:
            return experience_from_score(compound)
    return None


# --- narrative state -------------------------------------------------------------------------

USUAL_ORDER_WINDOW = 10  # the last N episodes with items
USUAL_ORDER_MIN_COUNT = 2  # an item ordered once is not "usual"


def usual_order_from(item_lists: Sequence[Sequence[dict]]) -> str:
    """The item ordered in most of the given episodes (newest first); ties go to the newest."""
    counts: dict[str, int] = {}
    first_seen: dict[str, int] = {}
    names: dict[str, str] = {}
    for position, items in enumerate(item_lists[:USUAL_ORDER_WINDOW]):
        for name in {str(item.get("name", "")).strip() for item in items}:
            if not name:
                continue
            key = name.casefold()
            counts[key] = counts.get(key, 0) + 1
            first_seen.setdefault(key, position)
            names.setdefault(key, name)
    if not counts:
        return ""
    best = min(counts, key=lambda key: (-counts[key], first_seen[key]))
    return names[best][:200] if counts[best] >= USUAL_ORDER_MIN_COUNT else ""


@dataclass
class NarrativeState:
    first_seen_at: datetime | None = None
    last_visit_at: datetime | None = None
    visit_count: int = 0
    episode_count: int = 0
    last_experience: int | None = None
    last_experience_at: datetime | None = None
    last_experience_episode_id: int | None = None
    last_negative_at: datetime | None = None
    last_follow_up_at: datetime | None = None
    usual_order: str = ""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def of(cls, obj: Any) -> NarrativeState:
        return cls(**{name: getattr(obj, name) for name in cls.field_names()})

    def apply(
        self, *, episode_id: int, kind: str, occurred_at: datetime, experience: int | None
    ) -> None:
        """Fold one episode in, whatever order episodes arrive in (late and back-dated too).

        Ties on `occurred_at` go to the higher id, the one recorded later.
        """
        self.episode_count += 1
        if self.first_seen_at is None or occurred_at < self.first_seen_at:
            self.first_seen_at = occurred_at
        if kind in VISIT_KINDS:
            self.visit_count += 1
            if self.last_visit_at is None or occurred_at > self.last_visit_at:
                self.last_visit_at = occurred_at
        if experience is not None and (
            self.last_experience_at is None
            or (occurred_at, episode_id)
            > (self.last_experience_at, self.last_experience_episode_id or 0)
        ):
            self.last_experience = experience
            self.last_experience_at = occurred_at
            self.last_experience_episode_id = episode_id
        if (
            experience is not None
            and experience < 0
            and (self.last_negative_at is None or occurred_at > self.last_negative_at)
        ):
            self.last_negative_at = occurred_at
        if kind in FOLLOW_UP_KINDS and (
            self.last_follow_up_at is None or occurred_at > self.last_follow_up_at
        ):
            self.last_follow_up_at = occurred_at


def fold_narrative(
    episodes: Iterable[tuple[int, str, datetime, int | None]],
    item_lists_newest_first: Sequence[Sequence[dict]],
) -> NarrativeState:
    """The narrative state recomputed from scratch: (id, kind, occurred_at, experience) rows."""
    state = NarrativeState()
    for episode_id, kind, occurred_at, experience in episodes:
        state.apply(
            episode_id=episode_id, kind=kind, occurred_at=occurred_at, experience=experience
        )
    state.usual_order = usual_order_from(item_lists_newest_first)
    return state
