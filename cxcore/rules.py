"""Pure rules of the narrative: no ORM here, so they are tested without a database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

import phonenumbers

from accounts.errors import InvalidInput
from cxcore.text_rules import normalize_email
from cxcore.vocabulary import (
    EXPERIENCE_MAX,
    EXPERIENCE_MIN,
    FOLLOW_UP_KINDS,
    VISIT_KINDS,
    EpisodeKind,
    IdentifierKind,
    RatingScale,
)

# --- dates -----------------------------------------------------------------------------------

# Every date a client may ask about: nothing before the business existed, nothing that would
# overflow a date computed from it (a 30-day default before 0001-01-01 raised OverflowError).
EARLIEST_DATE, LATEST_DATE = date(2000, 1, 1), date(2100, 12, 31)


def check_date_in_range(value: date) -> None:
    """Raise ValueError unless `value` is between EARLIEST_DATE and LATEST_DATE."""
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"Must be between {EARLIEST_DATE} and {LATEST_DATE}.")


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
        return normalize_email(value, field=kind)  # strictly: cxcore.text_rules
    # Cards and POS ids are opaque: compare them exactly, less surrounding spaces.
    return value


# --- search ---


@dataclass(frozen=True)
class SearchTerms:
    """What a search box asks for, each part with its reason: exact identifiers (a whole
    phone number, an email, a card), the ending of a phone number, and the words of a name."""

    identifiers: dict[str, str]
    phone_ending: str = ""
    name_words: tuple[str, ...] = ()


# Staff at a busy till ask for "the last four digits"; fewer match too many people to help.
PHONE_ENDING_MIN = 4
PHONE_ENDING_MAX = 15  # E.164 numbers have at most 15 digits
NAME_WORDS_MAX = 5
PHONE_PUNCTUATION = str.maketrans("", "", " -().")


def identifiers_in_search(text: str, *, country: str) -> SearchTerms:
    """Read a search box: an email; a whole phone number in any format; else digits are a card
    or the last 4 or more digits of a phone; words are a name in any order ("Reyes Daniel")
    and, typed alone, may be a card ("LOYAL-7")."""
    text = " ".join(text.split())
    if not text:
        return SearchTerms(identifiers={})
    if "@" in text:
        return SearchTerms(identifiers={IdentifierKind.EMAIL: text})
    digits = text.translate(PHONE_PUNCTUATION).removeprefix("+")
    if digits.isdigit():
        if len(digits) >= 6:
            try:
                normalize_identifier(IdentifierKind.PHONE, text, country=country)
                return SearchTerms(identifiers={IdentifierKind.PHONE: text})
            except InvalidInput:
                pass
        ending = digits if PHONE_ENDING_MIN <= len(digits) <= PHONE_ENDING_MAX else ""
        return SearchTerms(identifiers={IdentifierKind.CARD: text}, phone_ending=ending)
    words = tuple(
        word for word in text.replace(",", " ").split() if any(ch.isalpha() for ch in word)
    )[:NAME_WORDS_MAX]
    card: dict[str, str] = {IdentifierKind.CARD: text} if " " not in text else {}
    return SearchTerms(identifiers=card, name_words=words)


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
RATING_RANGES: dict[str, tuple[int, int]] = {
    RatingScale.STARS5: (1, 5),
    RatingScale.SCORE10: (0, 10),
}


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


def spend_of(items: Sequence[dict]) -> Decimal:
    """What an episode's items cost (items without a price count as nothing)."""
    total = Decimal(0)
    for item in items:
        price = item.get("price")
        if price not in (None, ""):
            total += Decimal(str(price)) * int(item.get("quantity") or 1)
    return total


# The largest Customer.total_spend holds (max_digits=12, decimal_places=2).
MAX_TOTAL_SPEND = Decimal("9999999999.99")


@dataclass
class NarrativeState:
    first_seen_at: datetime | None = None
    first_visit_at: datetime | None = None
    last_visit_at: datetime | None = None
    visit_count: int = 0
    total_spend: Decimal = Decimal(0)
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

    def as_dict(self) -> dict[str, Any]:
        """The fields by name (dataclasses.asdict deep-copies every value: slow in bulk)."""
        return {name: getattr(self, name) for name in self.field_names()}

    @classmethod
    def of(cls, obj: Any) -> NarrativeState:
        return cls(**{name: getattr(obj, name) for name in cls.field_names()})

    def apply(
        self,
        *,
        episode_id: int,
        kind: str,
        occurred_at: datetime,
        experience: int | None,
        spend: Decimal = Decimal(0),
    ) -> None:
        """Fold one episode in, whatever order episodes arrive in (late and back-dated too).

        Every field is a min, max, count, sum or arg-max, so the result does not depend on the
        order; ties on `occurred_at` go to the higher id, the one recorded later.
        """
        self.episode_count += 1
        # Saturates at what the column holds: items may add up past it (100 lines of 10,000 at
        # 99,999,999.99), and an overflow was a 500. min(sum, cap) of non-negative spends is
        # still order-free.
        self.total_spend = min(self.total_spend + spend, MAX_TOTAL_SPEND)
        if self.first_seen_at is None or occurred_at < self.first_seen_at:
            self.first_seen_at = occurred_at
        if kind in VISIT_KINDS:
            self.visit_count += 1
            if self.first_visit_at is None or occurred_at < self.first_visit_at:
                self.first_visit_at = occurred_at
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
    episodes: Iterable[tuple[int, str, datetime, int | None, Sequence[dict]]],
    item_lists_newest_first: Sequence[Sequence[dict]],
) -> NarrativeState:
    """The narrative state recomputed from scratch: (id, kind, occurred_at, experience, items)."""
    state = NarrativeState()
    for episode_id, kind, occurred_at, experience, items in episodes:
        state.apply(
            episode_id=episode_id,
            kind=kind,
            occurred_at=occurred_at,
            experience=experience,
            spend=spend_of(items),
        )
    state.usual_order = usual_order_from(item_lists_newest_first)
    return state


# --- due times -------------------------------------------------------------------------------
# Kept on the customer row by every write, so the sweep finds what is due through a partial
# index and costs what is due, not what exists (DESIGN.md invariant 5).


@dataclass(frozen=True)
class DuePolicy:
    """An organization's recovery and care settings."""

    grace: timedelta = timedelta(hours=2)
    care_min_visits: int = 5
    care_gap_factor: float = 3.0
    care_min_gap: timedelta = timedelta(days=14)
    # A new negative this soon after a resolved recovery is a double deviation: no grace.
    rerecovery_window: timedelta = timedelta(days=30)

    @classmethod
    def of(cls, organization: Any) -> DuePolicy:
        return cls(
            grace=organization.recovery_grace_period,
            care_min_visits=organization.care_min_visits,
            care_gap_factor=float(organization.care_gap_factor),
        )


@dataclass(frozen=True)
class CaseMarks:
    """What the recovery app records on the customer row about their cases."""

    recovery_case_open: bool = False
    # The newest negative a recovery case (open or closed) has covered: it is handled.
    recovery_handled_until: datetime | None = None
    # When the customer's last recovery case was resolved.
    recovery_resolved_at: datetime | None = None
    care_case_open: bool = False
    # The last visit before the latest care case: lapsing again needs a visit after it.
    care_handled_until: datetime | None = None
    # The newest experience the care sweep has looked at for a drift: it looks once per
    # experience that could end a slide.
    drift_checked_until: datetime | None = None

    @classmethod
    def field_names(cls) -> list[str]:
        """The marks' columns on the customer row, listed here only."""
        return [f.name for f in fields(cls)]


def is_unfollowed_negative(state: NarrativeState) -> bool:
    """The last experience is negative and no follow-up came after the last negative one."""
    return (
        state.last_experience is not None
        and state.last_experience < 0
        and state.last_negative_at is not None
        and (state.last_follow_up_at is None or state.last_follow_up_at < state.last_negative_at)
    )


class DueReason(StrEnum):
    """Why the sweep must look at a customer: the lifecycle acts on this, never on the time."""

    GRACE_PASSED = "grace_passed"  # an unfollowed negative, after time for on-the-spot recovery
    DOUBLE_DEVIATION = "double_deviation"  # a negative soon after a resolved recovery: at once
    FOLLOW_UP = "follow_up"  # an open case, and a follow-up after what it covers
    ANOTHER_NEGATIVE = "another_negative"  # an open case, and a negative after what it covers
    LAPSING = "lapsing"  # care: a regular gone quiet
    DRIFT_CHECK = "drift_check"  # care: a regular's experience fell, not below 0: drifting?
    CAME_BACK = "came_back"  # care: an open care case, and a visit or outreach since


@dataclass(frozen=True)
class Due:
    at: datetime
    reason: DueReason


def _earliest(*candidates: Due | None) -> Due | None:
    present = [due for due in candidates if due is not None]
    return min(present, key=lambda due: due.at) if present else None


def recovery_due(state: NarrativeState, marks: CaseMarks, policy: DuePolicy) -> Due | None:
    """When the sweep must look at this customer for recovery, and why; or None.

    - no open case, an unfollowed negative not yet handled: after the grace period (time for
      on-the-spot recovery); at once if a recovery was resolved at most `rerecovery_window`
      before it (double deviation);
    - an open case and a newer negative: at once (another bad experience, escalate);
    - an open case and a follow-up after what it covers: at once (the sweep resolves it).
    """
    handled = marks.recovery_handled_until
    negative = state.last_negative_at
    if marks.recovery_case_open:
        follow_up = state.last_follow_up_at
        return _earliest(
            Due(follow_up, DueReason.FOLLOW_UP)
            if follow_up is not None and (handled is None or follow_up > handled)
            else None,
            # A newer negative is a deviation even if a better experience came after it.
            Due(negative, DueReason.ANOTHER_NEGATIVE)
            if negative is not None and (handled is None or negative > handled)
            else None,
        )
    if not is_unfollowed_negative(state) or negative is None:
        return None
    if handled is not None and negative <= handled:
        return None
    resolved = marks.recovery_resolved_at
    if resolved is not None and resolved <= negative <= resolved + policy.rerecovery_window:
        return Due(negative, DueReason.DOUBLE_DEVIATION)
    return Due(negative + policy.grace, DueReason.GRACE_PASSED)


def recovery_due_at(state: NarrativeState, marks: CaseMarks, policy: DuePolicy) -> datetime | None:
    due = recovery_due(state, marks, policy)
    return due.at if due else None


REGULAR_MIN_SPAN = timedelta(days=7)


def is_regular(state: NarrativeState, policy: DuePolicy) -> bool:
    """The one definition of a regular: at least `care_min_visits` visits (two at the least)
    spread over a week or more; five orders in one sitting do not make a regular."""
    return (
        state.visit_count >= max(2, policy.care_min_visits)
        and state.first_visit_at is not None
        and state.last_visit_at is not None
        and state.last_visit_at - state.first_visit_at >= REGULAR_MIN_SPAN
    )


def usual_gap(state: NarrativeState) -> timedelta | None:
    """The customer's rhythm: the mean gap between their visits.

    (last visit - first visit) / (visits - 1): exact under any arrival order, O(1) to keep on
    the row, and equal to the recomputed value; a median would need the whole history and an
    exponential average would depend on the order episodes arrive in.
    """
    if state.visit_count < 2 or state.first_visit_at is None or state.last_visit_at is None:
        return None
    return (state.last_visit_at - state.first_visit_at) / (state.visit_count - 1)


def care_due(state: NarrativeState, marks: CaseMarks, policy: DuePolicy) -> Due | None:
    """When the care sweep must look at this customer, and why; or None.

    - a care case open: at once when they visit again or get an outreach (it resolves);
    - otherwise the earlier of lapse_due and drift_check_due.
    """
    handled = marks.care_handled_until
    if marks.care_case_open:
        return _earliest(
            *(
                Due(t, DueReason.CAME_BACK)
                for t in (state.last_visit_at, state.last_follow_up_at)
                if t is not None and (handled is None or t > handled)
            )
        )
    return _earliest(lapse_due(state, marks, policy), drift_check_due(state, marks, policy))


def lapse_due(state: NarrativeState, marks: CaseMarks, policy: DuePolicy) -> Due | None:
    """A regular becomes "lapsing" k times their usual gap (and at least the minimum) after
    their last visit; not again until they have visited since the last care case."""
    handled = marks.care_handled_until
    if marks.care_case_open or not is_regular(state, policy) or state.last_visit_at is None:
        return None
    if handled is not None and state.last_visit_at <= handled:
        return None
    gap = usual_gap(state)
    if gap is None:
        return None
    return Due(
        state.last_visit_at + max(gap * policy.care_gap_factor, policy.care_min_gap),
        DueReason.LAPSING,
    )


def drift_check_due(state: NarrativeState, marks: CaseMarks, policy: DuePolicy) -> Due | None:
    """A regular whose newest experience could end a slide (0 or +1: any slide of one step or
    more from at most +2, with no negative) is looked at once, at that experience: the sweep
    reads their last few experiences and decides (recovery.care_reasons.drifting)."""
    at, experience = state.last_experience_at, state.last_experience
    if marks.care_case_open or at is None or experience is None or not 0 <= experience <= 1:
        return None
    if not is_regular(state, policy):
        return None
    for seen in (marks.drift_checked_until, marks.care_handled_until):
        if seen is not None and at <= seen:
            return None
    return Due(at, DueReason.DRIFT_CHECK)


def care_due_at(state: NarrativeState, marks: CaseMarks, policy: DuePolicy) -> datetime | None:
    due = care_due(state, marks, policy)
    return due.at if due else None


def due_times(
    state: NarrativeState, marks: CaseMarks, policy: DuePolicy
) -> tuple[datetime | None, datetime | None]:
    """The customer row's (recovery_due_at, care_due_at): what the partial indexes serve."""
    return recovery_due_at(state, marks, policy), care_due_at(state, marks, policy)
