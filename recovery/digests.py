"""The opt-in daily digest: new and overdue cases and yesterday's figures, each morning in
the recipient's time zone (the organization's)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Membership, Role
from accounts.tenancy import Tenant
from cxcore.db_router import replica_reads
from recovery.insights import summary
from recovery.models import CaseStatus
from recovery.selectors import cases_for

logger = logging.getLogger(__name__)
DIGEST_HOUR = 7  # local time


@replica_reads()
def send_daily_digests(*, now: datetime | None = None) -> int:
    """Run hourly: whoever opted in and has reached DIGEST_HOUR today gets one digest.

    The day is claimed with a compare-and-swap on digest_sent_on before sending, so two runs
    (or two beats) send it once; a failed mail releases the claim for the next run. The figures
    and cases may come from a replica (cxcore.db_router); the memberships and their claims are
    always the primary's.
    """
    now = now or timezone.now()
    sent = 0
    members = (
        Membership.objects.filter(daily_digest=True, role__in=[Role.OWNER, Role.MANAGER])
        .select_related("user", "organization")
        .prefetch_related("locations")
    )
    for member in members:
        local = now.astimezone(ZoneInfo(member.organization.time_zone))
        today = local.date()
        if local.hour < DIGEST_HOUR or member.digest_sent_on == today:
            continue
        claimed = (
            Membership.objects.filter(pk=member.pk)
            .filter(Q(digest_sent_on__isnull=True) | Q(digest_sent_on__lt=today))
            .update(digest_sent_on=today)
        )
        if not claimed:
            continue
        try:
            _send(member, now=now, today=today)
            sent += 1
        except Exception:
            logger.exception("daily digest for membership %s failed; retrying later", member.pk)
            Membership.objects.filter(pk=member.pk, digest_sent_on=today).update(
                digest_sent_on=member.digest_sent_on
            )
    return sent


def _send(member: Membership, *, now: datetime, today) -> None:
    limited = frozenset(loc.pk for loc in member.locations.all())
    tenant = Tenant(
        organization=member.organization,
        user=member.user,
        membership=member,
        location_ids=limited if member.role != Role.OWNER and limited else None,
    )
    yesterday = today - timedelta(days=1)
    # Held-out care cases are nobody's work: the digest does not list or count them.
    open_cases = cases_for(tenant).filter(status=CaseStatus.OPEN).worked()
    context = {
        "member": member,
        "figures": summary(tenant=tenant, start=yesterday, end=yesterday),
        "new_cases": list(
            open_cases.filter(opened_at__gte=now - timedelta(days=1))
            .select_related("customer")
            .order_by("-severity", "opened_at")[:20]
        ),
        "overdue_count": open_cases.overdue(now).count(),
        "queue_url": f"{settings.SITE_URL}/recovery/",
        "day": yesterday,
    }
    send_mail(
        subject=f"Comeback: {member.organization.name}, {yesterday:%a %d %b}",
        message=render_to_string("recovery/digest.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[member.user.email],
    )
