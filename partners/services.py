"""Every change to partners and their incidents; each function owns its transaction.

Opening incidents is the sweep's (`open_incidents_for`, called once per batch with the cases
it opened, extended or reopened and the negatives each took in): set-based, one read of the
active partners of the batch's organizations and one INSERT … ON CONFLICT DO NOTHING against
`partner_incident_once_per_episode`, so a retried batch or a second sweep adds nothing.
An incident then moves open → answered → fixed or disputed by compare-and-swap updates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import ConflictError, InvalidInput
from accounts.models import Organization, User
from cxcore.bulk import insert_rows
from cxcore.rules import normalize_phone
from cxcore.text_rules import check_free_text, check_name, normalize_email, storable_problem
from cxcore.vocabulary import Touchpoint, touchpoint_label
from partners.models import Partner, PartnerIncident
from partners.vocabulary import OPEN_STATUSES, IncidentStatus
from recovery.models import RecoveryCase

PARTNER_FIELDS = (
    "name", "contact_name", "contact_email", "contact_phone", "touchpoints", "is_active",
)  # fmt: skip
MAX_ANSWER = 2000
TOUCHPOINT_CODES = frozenset(str(code) for code in Touchpoint.values)
CODES_LIST = ", ".join(sorted(TOUCHPOINT_CODES))


# --- partners --------------------------------------------------------------------------------


def _text(fields: Mapping[str, Any], name: str, *, limit: int, required: bool = False) -> str:
    value = fields.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput("Must be text.", field=name)
    value = value.strip()
    if required and not value:
        raise InvalidInput("Required.", field=name, code="required")
    if len(value) > limit:
        raise InvalidInput(f"At most {limit} characters.", field=name, code="max_length")
    problem = storable_problem(value)
    if problem:
        raise InvalidInput(f"Must not hold {problem}.", field=name, code="invalid_characters")
    return value


def touchpoint_codes(value: Any, *, field: str = "touchpoints") -> list[str]:
    """The touchpoint codes a partner runs, sorted and once each; an unknown one is a 400."""
    if not isinstance(value, list | tuple) or not all(isinstance(c, str) for c in value):
        raise InvalidInput("A list of touchpoint codes.", field=field)
    unknown = sorted(set(value) - TOUCHPOINT_CODES)
    if unknown:
        raise InvalidInput(
            f"{unknown[0][:40]!r} is not a touchpoint; use one of {CODES_LIST}.",
            field=field,
            code="invalid_choice",
        )
    if not value:
        raise InvalidInput("Name the touchpoints this partner runs.", field=field, code="required")
    return sorted(set(value))


def _clean(organization: Organization, fields: Mapping[str, Any], *, partial: bool) -> dict:
    unknown = sorted(set(fields) - set(PARTNER_FIELDS))
    if unknown:
        raise InvalidInput("Not a partner field.", field=unknown[0], code="unknown")
    clean: dict[str, Any] = {}
    if "name" in fields or not partial:
        clean["name"] = _text(fields, "name", limit=100, required=True)
        check_name(clean["name"], field="name")
    if "contact_name" in fields:
        clean["contact_name"] = _text(fields, "contact_name", limit=100)
        check_name(clean["contact_name"], field="contact_name")
    if "contact_email" in fields:
        email = _text(fields, "contact_email", limit=254)
        clean["contact_email"] = normalize_email(email, field="contact_email") if email else ""
    if "contact_phone" in fields:
        phone = _text(fields, "contact_phone", limit=40)
        try:
            clean["contact_phone"] = normalize_phone(phone, organization.country) if phone else ""
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field="contact_phone", code=exc.code) from exc
    if "touchpoints" in fields or not partial:
        clean["touchpoints"] = touchpoint_codes(fields.get("touchpoints", []))
    if "is_active" in fields:
        if not isinstance(fields["is_active"], bool):
            raise InvalidInput("Must be true or false.", field="is_active")
        clean["is_active"] = fields["is_active"]
    return clean


def _refuse_clashes(partner: Partner) -> None:
    """A touchpoint is run by at most one active partner of the organization (the caller holds
    the organization's row lock, so two saves cannot both pass this)."""
    if not partner.is_active:
        return
    others = Partner.objects.for_org(partner.organization_id).active().exclude(pk=partner.pk)
    mine = set(partner.touchpoints)
    for other in others.order_by("name", "id"):
        taken = sorted(mine & set(other.touchpoints))
        if taken:
            raise InvalidInput(
                f"{touchpoint_label(taken[0])} is run by {other.name} already: take it off "
                "them first, or make them inactive.",
                field="touchpoints",
                code="touchpoint_taken",
            )


def _save(partner: Partner) -> Partner:
    # The organization's row serialises every partner save of that organization: the check
    # for a touchpoint already taken and the write happen with no other save in between.
    Organization.objects.select_for_update(no_key=True).filter(pk=partner.organization_id).first()
    _refuse_clashes(partner)
    try:
        with transaction.atomic():
            partner.save()
    except IntegrityError as exc:  # partner_name_unique_per_org
        raise InvalidInput(
            "There is a partner of that name already.", field="name", code="taken"
        ) from exc
    return partner


@transaction.atomic
def create_partner(
    *, organization: Organization, fields: Mapping[str, Any], now: datetime | None = None
) -> Partner:
    """A new partner, from the fields of `PARTNER_FIELDS` (name and touchpoints required)."""
    clean = _clean(organization, fields, partial=False)
    partner = Partner(organization=organization, created_at=now or timezone.now(), **clean)
    return _save(partner)


@transaction.atomic
def update_partner(*, partner: Partner, fields: Mapping[str, Any]) -> Partner:
    """Change some of a partner's fields; its incidents stay as they are."""
    clean = _clean(partner.organization, fields, partial=True)
    for name, value in clean.items():
        setattr(partner, name, value)
    return _save(partner)


# --- opening incidents (the sweep) -----------------------------------------------------------


class NegativeFacts(Protocol):
    """What opening an incident reads of an episode: a sweep row or a model."""

    @property
    def id(self) -> int: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def experience(self) -> int | None: ...
    @property
    def touchpoints(self) -> list[dict[str, Any]]: ...
    @property
    def location_id(self) -> int | None: ...


def runners_by_org(organization_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """For each organization, which active partner runs each touchpoint code: one query for a
    whole batch of organizations."""
    ids = set(organization_ids)
    runners: dict[int, dict[str, int]] = defaultdict(dict)
    if not ids:
        return runners
    for org_id, partner_id, codes in (
        Partner.objects.filter(organization_id__in=ids, is_active=True)
        .order_by("pk")
        .values_list("organization_id", "pk", "touchpoints")
    ):
        for code in codes or []:
            runners[org_id].setdefault(code, partner_id)
    return runners


def incidents_to_open(
    links: Iterable[tuple[RecoveryCase, Sequence[NegativeFacts]]],
    runners: Mapping[int, Mapping[str, int]],
    *,
    now: datetime,
) -> list[PartnerIncident]:
    """The incidents `links` call for (unsaved): one per negative episode and partner whose
    touchpoint it names. Pure: no query."""
    wanted: dict[tuple[int, int], PartnerIncident] = {}
    for case, episodes in links:
        runs = runners.get(case.organization_id)
        if not runs:
            continue
        for episode in episodes:
            if episode.experience is None or episode.experience >= 0:
                continue
            mine: dict[int, list[str]] = defaultdict(list)
            for point in episode.touchpoints or []:
                code = point.get("code") if isinstance(point, dict) else None
                if isinstance(code, str) and code in runs:
                    mine[runs[code]].append(code)
            for partner_id, codes in mine.items():
                wanted.setdefault(
                    (partner_id, episode.id),
                    PartnerIncident(
                        organization_id=case.organization_id,
                        partner_id=partner_id,
                        customer_id=case.customer_id,
                        episode_id=episode.id,
                        recovery_case_id=case.pk,
                        location_id=episode.location_id,
                        occurred_at=episode.occurred_at,
                        touchpoints=sorted(set(codes)),
                        experience=episode.experience,
                        status=IncidentStatus.OPEN,
                        opened_at=now,
                    ),
                )
    return list(wanted.values())


def open_incidents_for(
    *,
    links: Sequence[tuple[RecoveryCase, Sequence[NegativeFacts]]],
    now: datetime,
) -> list[PartnerIncident]:
    """Open the partner incidents beside cases the sweep just opened, extended or reopened:
    `links` pairs each (saved) case with the negative episodes it took in. Returns those
    opened now; an incident that exists already (the same partner and episode) is left as it
    is. No query when no episode names a touchpoint; otherwise two, however large the batch."""
    links = [
        (case, episodes)
        for case, episodes in links
        if case.pk is not None and any(e.touchpoints for e in episodes)
    ]
    if not links:
        return []
    runners = runners_by_org({case.organization_id for case, _ in links})
    incidents = incidents_to_open(links, runners, now=now)
    if not incidents:
        return []
    insert_rows(
        PartnerIncident, incidents, ignore_conflicts=True, match_on=("partner_id", "episode_id")
    )
    return [incident for incident in incidents if incident.pk is not None]


# --- the partner's answer --------------------------------------------------------------------


def _note(text: Any, *, required: bool) -> str:
    value = _text({"answer": text if text is not None else ""}, "answer", limit=MAX_ANSWER)
    if required and not value:
        raise InvalidInput("Say what the partner answered.", field="answer", code="required")
    check_free_text(value, field="answer")
    return value


def _move(
    incident: PartnerIncident, *, status: IncidentStatus, note: str, by: User | None, now: datetime
) -> PartnerIncident:
    """From an unclosed status to `status`, under the incident's row lock: a second click, or
    someone else closing it meanwhile, changes nothing and is a 409 naming the status."""
    locked = PartnerIncident.objects.select_for_update().filter(pk=incident.pk).first()
    if locked is None or locked.status not in OPEN_STATUSES:
        current = locked.status if locked is not None else "gone"
        raise ConflictError(f"The incident is {current} already.", field="status", code="closed")
    locked.status = status
    # The first word from the partner, whatever it was, is when they answered.
    if locked.answered_at is None:
        locked.answered_at, locked.answered_by = now, by
    if note:
        locked.answer = note
    if status != IncidentStatus.ANSWERED:
        locked.closed_at, locked.closed_by = now, by
    locked.save(
        update_fields=["status", "answered_at", "answered_by", "answer", "closed_at", "closed_by"]
    )
    return locked


@transaction.atomic
def answer_incident(
    *, incident: PartnerIncident, answer: str, by: User | None, now: datetime | None = None
) -> PartnerIncident:
    """Record what the partner answered (again, if they say more before it is closed)."""
    return _move(
        incident,
        status=IncidentStatus.ANSWERED,
        note=_note(answer, required=True),
        by=by,
        now=now or timezone.now(),
    )


@transaction.atomic
def fix_incident(
    *, incident: PartnerIncident, by: User | None, note: str = "", now: datetime | None = None
) -> PartnerIncident:
    """The partner put it right (what they did, in `note`, if said): closed."""
    return _move(
        incident,
        status=IncidentStatus.FIXED,
        note=_note(note, required=False),
        by=by,
        now=now or timezone.now(),
    )


@transaction.atomic
def dispute_incident(
    *, incident: PartnerIncident, by: User | None, note: str, now: datetime | None = None
) -> PartnerIncident:
    """The partner disputes it was theirs (why, in `note`, required): closed as disputed."""
    return _move(
        incident,
        status=IncidentStatus.DISPUTED,
        note=_note(note, required=True),
        by=by,
        now=now or timezone.now(),
    )
