"""They're coming back: a reservation by a customer with an open case makes the case due now
and tells its assignee (else the location's managers), once per booking, outside quiet hours.

Reservations come in through every door there is (the episodes API, Square's bookings, an
import), and cxcore does not know about cases, so one sweep finds them: every minute it reads
the reservation episodes recorded since its last run (by primary key, which the episodes'
own index serves) of customers whose row says a case is open, and reminds each case once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Role
from cxcore.models import Episode, EpisodeKind
from cxcore.services import lock_customers
from recovery import lifecycle
from recovery.events import save_case_events
from recovery.models import CaseKind, CaseReminder, RecoveryCase, SweepRun
from recovery.rules import is_quiet_hour
from recovery.selectors import case_headline, newest_triggers

logger = logging.getLogger(__name__)
SWEEP_NAME = "reminders"
BATCH = 500
# A reservation logged long after it was made (an import of last year's bookings) is history,
# not news that someone is on the way.
RECENT = timedelta(days=7)
MAX_BOOKING = 60


# --- rules (pure) ----------------------------------------------------------------------------


def booking_text(summary: str) -> str:
    """What the reservation says about the booking ("Sat 19:00 for 2"): its summary's first
    line, without a leading "booked" (the line adds it)."""
    text = " ".join((summary or "").splitlines()[0].split()) if (summary or "").strip() else ""
    if text.casefold().startswith("booked"):
        text = text[len("booked") :].lstrip(" :—-")
    if len(text) > MAX_BOOKING:
        text = text[: MAX_BOOKING - 1].rstrip() + "…"
    return text


def booking_key(*, location_id: int | None, booking: str) -> str:
    return f"{location_id or ''}|{booking.casefold()}"[:300]


def reminder_line(*, headline: str, acknowledged: bool, booking: str) -> str:
    """'Dan — order never rung in · 6 days ago, unacknowledged — booked Sat 19:00 for 2'."""
    state = "acknowledged" if acknowledged else "unacknowledged"
    booked = f"booked {booking}" if booking else "booked to come back"
    return f"{headline}, {state} — {booked}"


# --- finding reservations --------------------------------------------------------------------


def remind_of_reservations(*, now: datetime | None = None, batch_size: int = BATCH) -> int:
    """The sweep: remind cases of the reservations recorded since the run before last.

    Each run reads from where the previous run started, so an episode whose transaction
    committed after a later one (ids are handed out before commit) is still seen; the
    reminder's unique constraint makes reading it twice harmless. The first run ever starts
    from now: a deployment does not remind about every old booking.
    """
    now = now or timezone.now()
    top = Episode.objects.aggregate(top=Max("pk"))["top"] or 0
    run = SweepRun.objects.filter(name=SWEEP_NAME).first()
    if run is None:
        _save_watermark(top=top, previous=top, now=now)
        return 0
    floor = int(run.result.get("previous", run.result.get("top", 0)))
    reminded = 0
    last = floor
    while True:
        ids = list(
            Episode.objects.filter(
                pk__gt=last,
                pk__lte=top,
                kind=EpisodeKind.RESERVATION,
                occurred_at__gte=now - RECENT,
            )
            .filter(Q(customer__recovery_case_open=True) | Q(customer__care_case_open=True))
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        for episode_id in ids:
            if remind_of_reservation(episode_id=episode_id, now=now) is not None:
                reminded += 1
        if len(ids) < batch_size:
            break
        last = ids[-1]
    _save_watermark(top=top, previous=int(run.result.get("top", floor)), now=now)
    return reminded


def _save_watermark(*, top: int, previous: int, now: datetime) -> None:
    SweepRun.objects.update_or_create(
        name=SWEEP_NAME, defaults={"finished_at": now, "result": {"top": top, "previous": previous}}
    )


def remind_of_reservation(*, episode_id: int, now: datetime | None = None) -> CaseReminder | None:
    """Remind the customer's open case (recovery before care) of one reservation, once per
    booking; None when there is nothing to remind or it was reminded already."""
    now = now or timezone.now()
    episode = Episode.objects.select_related("location").filter(pk=episode_id).first()
    if episode is None or episode.kind != EpisodeKind.RESERVATION:
        return None
    with transaction.atomic():
        # Lock order: the customer row, then the case (recovery.services).
        lock_customers([episode.customer_id])
        cases = list(
            # A held-out care case gets no outreach: a booking does not remind anyone of it.
            RecoveryCase.objects.open()
            .worked()
            .filter(customer_id=episode.customer_id)
            .select_related("customer")
            .select_for_update(of=("self",))
            .order_by("pk")
        )
        if not cases:
            return None
        # A bad experience to put right comes before a regular to welcome back.
        case = next((c for c in cases if c.kind == CaseKind.RECOVERY), cases[0])
        booking = booking_text(episode.summary)
        trigger = newest_triggers([case.pk]).get(case.pk)
        headline = case_headline(case, trigger, now=now)
        line = reminder_line(
            headline=headline, acknowledged=case.acknowledged_at is not None, booking=booking
        )
        try:
            with transaction.atomic():
                reminder = CaseReminder.objects.create(
                    case=case,
                    episode=episode,
                    booking_key=booking_key(location_id=episode.location_id, booking=booking),
                    booking=booking,
                    line=line,
                    location=episode.location,
                    created_at=now,
                )
        except IntegrityError:
            return None  # this booking reminded the case already
        plan = lifecycle.Remind(case.pk, lifecycle.Reason.BOOKED, episode.pk, booking, line)
        applied = lifecycle.remind(case, plan, now=now)
        case.save(update_fields=lifecycle.REMINDED_FIELDS)
        save_case_events(applied.events, now=now)
    return reminder


# --- telling someone -------------------------------------------------------------------------


def notify_reminders(*, now: datetime | None = None, batch_size: int = 200) -> int:
    """Email the reminders not sent yet, unless it is quiet hours where they booked: then a
    run after the quiet hours sends them. Claimed and committed before any mail goes out (a
    slow mail server holds no locks); a failed mail releases its claim for the next run."""
    now = now or timezone.now()
    sent = 0
    last_id = 0
    while True:
        with transaction.atomic():
            candidates = list(
                CaseReminder.objects.filter(notified_at__isnull=True, pk__gt=last_id)
                .select_related("case__organization", "case__location", "location")
                .order_by("pk")
                .select_for_update(skip_locked=True, of=("self",))[:batch_size]
            )
            if not candidates:
                return sent
            last_id = candidates[-1].pk
            due = [r.pk for r in candidates if not _quiet_now(r, now)]
            CaseReminder.objects.filter(pk__in=due).update(notified_at=now)
        for reminder in CaseReminder.objects.filter(pk__in=due).select_related(
            "case__organization", "case__location", "case__customer", "case__assignee", "location"
        ):
            try:
                recipients = reminder_recipients(reminder)
                if recipients and reminder.case.is_open:
                    send_mail(
                        subject=f"Coming back: {reminder.case.customer}",
                        message=_message(reminder),
                        from_email=settings.DEFAULT_FROM_EMAIL,
                        recipient_list=recipients,
                    )
                    sent += 1
            except Exception:
                logger.exception("reminder email %s failed; retrying later", reminder.pk)
                CaseReminder.objects.filter(pk=reminder.pk, notified_at=now).update(
                    notified_at=None
                )
        if len(candidates) < batch_size:
            return sent


def _where(reminder: CaseReminder):
    return reminder.location or reminder.case.location


def _quiet_now(reminder: CaseReminder, now: datetime) -> bool:
    org = reminder.case.organization
    location = _where(reminder)
    tz = ZoneInfo(location.time_zone if location else org.time_zone)
    return is_quiet_hour(now.astimezone(tz).hour, org.quiet_hours_start, org.quiet_hours_end)


def reminder_recipients(reminder: CaseReminder) -> list[str]:
    """The case's assignee; else the managers of where they booked (those limited to other
    locations are not told); else, with no such manager, the owners."""
    case = reminder.case
    if case.assignee is not None and case.assignee.is_active:
        return [case.assignee.email]
    members = Membership.objects.filter(organization_id=case.organization_id, user__is_active=True)
    managers = members.filter(role=Role.MANAGER)
    location = _where(reminder)
    if location is not None:
        managers = managers.filter(Q(locations__isnull=True) | Q(locations=location.pk))
    emails = sorted(set(managers.values_list("user__email", flat=True)))
    if emails:
        return emails
    return sorted(set(members.filter(role=Role.OWNER).values_list("user__email", flat=True)))


def _message(reminder: CaseReminder) -> str:
    link = settings.SITE_URL + reverse("case-page", args=[reminder.case.pk])
    where = _where(reminder)
    at = f" at {where.name}" if where else ""
    return (
        f"{reminder.line}\n\nThey booked{at}: a moment to put it right before they arrive.\n\n"
        f"Open the case: {link}\n"
    )
