"""Checks: what the POS rang up, line by line. The check is one order episode; each comped,
voided or remade line with a reason is also a negative incident on the touchpoint the reason
maps to, so the regular whose salad was never rung in gets a case even if he never complains.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import ConflictError, InvalidInput
from accounts.models import ApiKey, Location, Organization, User
from connectors.models import Check
from connectors.reasons import ReasonEntry, map_reason
from connectors.services import reason_entries
from cxcore.models import Episode
from cxcore.services import EpisodeInput, record_episode
from cxcore.vocabulary import EpisodeKind, Source


class LineStatus:
    OK = "ok"
    COMPED = "comped"
    VOIDED = "voided"
    REMADE = "remade"

    ALL = (OK, COMPED, VOIDED, REMADE)
    # Given away or taken off the check: the customer paid nothing for it.
    UNCHARGED = frozenset({COMPED, VOIDED})


@dataclass(frozen=True)
class CheckLine:
    name: str
    quantity: int = 1
    price: Decimal | None = None
    status: str = LineStatus.OK
    reason: str = ""

    @property
    def is_incident(self) -> bool:
        return self.status != LineStatus.OK and bool(self.reason.strip())


@dataclass
class CheckInput:
    external_id: str
    lines: list[CheckLine]
    occurred_at: datetime | None = None
    location: Location | None = None
    customer_id: int | None = None
    identifiers: dict[str, str] = field(default_factory=dict)
    name: str = ""

    def fingerprint(self) -> str:
        """Tells a retry of this check from a different check under the same external id."""
        canonical = {
            "customer": [self.customer_id, sorted(self.identifiers.items()), self.name],
            "location": self.location.pk if self.location else None,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "lines": [asdict(line) for line in self.lines],
        }
        text = json.dumps(canonical, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class RecordedCheck:
    check: Check
    order: Episode
    incidents: list[Episode]
    created: bool


def order_items(lines: list[CheckLine]) -> list[dict]:
    """The order episode's items: every line, uncharged ones at price 0 (what the customer
    spent) with the list price and why beside it."""
    items = []
    for line in lines:
        item: dict = {"name": line.name, "quantity": line.quantity}
        if line.price is not None:
            charged = Decimal(0) if line.status in LineStatus.UNCHARGED else line.price
            item["price"] = f"{charged:.2f}"
        if line.status != LineStatus.OK:
            item["status"] = line.status
            if line.price is not None:
                item["list_price"] = f"{line.price:.2f}"
            if line.reason:
                item["reason"] = line.reason
        items.append(item)
    return items


def incident_summary(line: CheckLine) -> str:
    """'Salad never rung in (voided)': the headline reads it as what went wrong."""
    reason = " ".join(line.reason.split())
    text = reason if reason.casefold().startswith(line.name.casefold()) else f"{line.name} {reason}"
    return f"{text} ({line.status})"


def incident_input(
    line: CheckLine,
    *,
    index: int,
    data: CheckInput,
    customer_id: int,
    occurred_at: datetime,
    entries: list[ReasonEntry],
) -> EpisodeInput:
    mapped = map_reason(line.reason, entries)
    return EpisodeInput(
        kind=EpisodeKind.INCIDENT,
        occurred_at=occurred_at,
        customer_id=customer_id,
        location=data.location,
        source=Source.POS,
        external_id=f"check:{data.external_id}:{index}",
        summary=incident_summary(line),
        touchpoints=[{"code": mapped.touchpoint, "third_party": False}],
        experience=mapped.experience,
    )


@contextmanager
def errors_named_by_line(*, line: int | None = None) -> Iterator[None]:
    """The narrative names an episode's fields (items[2].name, summary); the client sent a
    check, so a refusal names the line: the order's items are the lines in order, and an
    incident's text is its line's reason."""
    try:
        yield
    except InvalidInput as exc:
        if exc.field and exc.field.startswith("items["):
            exc.field = "lines[" + exc.field.removeprefix("items[")
        elif exc.field == "summary" and line is not None:
            exc.field = f"lines[{line}].reason"
        raise


def record_check(
    *,
    organization: Organization,
    data: CheckInput,
    author_user: User | None = None,
    author_api_key: ApiKey | None = None,
    now: datetime | None = None,
) -> RecordedCheck:
    """One order episode and an incident per comped, voided or remade line with a reason, all
    or nothing. The check row is inserted first: a concurrent retry waits on its unique index
    and then replays the first result; the same external id with another check is refused."""
    now = now or timezone.now()
    fingerprint = data.fingerprint()
    occurred_at = data.occurred_at or now
    with transaction.atomic():
        try:
            with transaction.atomic():
                check = Check.objects.create(
                    organization=organization,
                    external_id=data.external_id,
                    fingerprint=fingerprint,
                    created_at=now,
                )
        except IntegrityError:
            return _replay(organization, data.external_id, fingerprint)
        with errors_named_by_line():
            order = record_episode(
                organization=organization,
                data=EpisodeInput(
                    kind=EpisodeKind.ORDER,
                    occurred_at=occurred_at,
                    customer_id=data.customer_id,
                    identifiers=data.identifiers,
                    name=data.name,
                    location=data.location,
                    source=Source.POS,
                    external_id=f"check:{data.external_id}",
                    items=order_items(data.lines),
                ),
                author_user=author_user,
                author_api_key=author_api_key,
                now=now,
            ).episode
        entries = reason_entries(organization=organization)
        incidents = []
        for index, line in enumerate(data.lines):
            if not line.is_incident:
                continue
            line_input = incident_input(
                line,
                index=index,
                data=data,
                customer_id=order.customer_id,
                occurred_at=occurred_at,
                entries=entries,
            )
            with errors_named_by_line(line=index):
                incidents.append(
                    record_episode(
                        organization=organization,
                        data=line_input,
                        author_user=author_user,
                        author_api_key=author_api_key,
                        now=now,
                    )
                )
        check.order_episode = order
        check.incident_episode_ids = [r.episode.pk for r in incidents]
        check.save(update_fields=["order_episode", "incident_episode_ids"])
    return RecordedCheck(check, order, [r.episode for r in incidents], created=True)


def _replay(organization: Organization, external_id: str, fingerprint: str) -> RecordedCheck:
    check = (
        Check.objects.for_org(organization)
        .select_related("order_episode")
        .get(external_id=external_id)
    )
    if check.fingerprint != fingerprint:
        raise ConflictError(
            "Another check was logged with this external_id.",
            field="external_id",
            code="external_id_reused",
        )
    incidents = list(
        Episode.objects.filter(pk__in=check.incident_episode_ids)
        .select_related("location")
        .order_by("pk")
    )
    if check.order_episode is None:  # its episodes were deleted since (a merge, an erasure)
        raise ConflictError(
            "This check was logged, and its episodes are gone since.",
            field="external_id",
            code="gone",
        )
    return RecordedCheck(check, check.order_episode, incidents, created=False)
