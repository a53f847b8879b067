"""The sweeps: open what is due, found through the partial indexes on the customer row.

Each batch is one transaction over at most `batch_size` customers, taken with
FOR UPDATE SKIP LOCKED: two sweeps at once take disjoint customers, a killed worker's batch
rolls back and the next run does it, and the cost follows what is due, not what exists.
Within a batch, decisions are made in memory from a handful of set-based reads and written
back set-based; new cases go in with ON CONFLICT DO NOTHING against the partial unique
constraint, which stays the last word whatever races. Lock order: customers, then cases.
A batch that fails is retried customer by customer, and a customer that still fails is put
back an hour, so one bad row cannot stop every organization's flagging.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, cast

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Max, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from accounts.models import Organization
from cxcore.bulk import insert_rows, update_rows
from cxcore.models import FOLLOW_UP_KINDS, VISIT_KINDS, Customer, Episode
from cxcore.rules import CaseMarks, due_times, is_regular
from cxcore.services import LockedNarrative, lock_customers
from cxcore.vocabulary import Touchpoint
from partners.services import open_incidents_for
from recovery import care_reasons, lifecycle
from recovery.events import save_case_events
from recovery.models import (
    CaseAction,
    CaseEvent,
    CaseKind,
    CaseStatus,
    CaseTrigger,
    PlaybookVariant,
    RecoveryCase,
    SweepRun,
)
from recovery.rules import (
    CaseContext,
    PlaybookSpec,
    first_match,
    first_name_of,
    render_action,
    standing_of,
)
from recovery.services import playbook_specs

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 1000
# How far back before the latest negative its fellow triggers are gathered.
TRIGGER_LOOKBACK = timedelta(days=30)
# A customer whose own data keeps failing is looked at again this much later.
RETRY_LATER = timedelta(hours=1)
# What the database says when it is the problem, not the data: the connection went away, a
# deadlock, a serialization failure (PostgreSQL's 40001 and 40P01 are OperationalErrors).
TRANSIENT = (OperationalError, InterfaceError)
MARK_FIELDS = CaseMarks.field_names()


@dataclass
class SweepResult:
    opened: int = 0
    reopened: int = 0
    deviations: int = 0
    resolved: int = 0
    looked_at: int = 0
    failed: int = 0

    def count(self, plan: lifecycle.Plan) -> None:
        match plan:
            case lifecycle.Open():
                self.opened += 1
            case lifecycle.Reopen():
                self.reopened += 1
            case lifecycle.Resolve():
                self.resolved += 1
            case lifecycle.Extend(deviations=deviations) if deviations:
                self.deviations += 1

    def __iadd__(self, other: SweepResult) -> SweepResult:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def sweep_recovery(
    *, now: datetime | None = None, batch_size: int = DEFAULT_BATCH, max_batches: int = 1000
) -> SweepResult:
    """Open, extend, reopen or resolve recovery cases for every customer whose due time passed."""
    return _sweep("recovery_due_at", _recovery_batch, now, batch_size, max_batches)


def sweep_care(
    *, now: datetime | None = None, batch_size: int = DEFAULT_BATCH, max_batches: int = 1000
) -> SweepResult:
    """Open care cases for regulars gone quiet; resolve them when they visit or get a call."""
    return _sweep("care_due_at", _care_batch, now, batch_size, max_batches)


def _sweep(
    due_field: str,
    batch: Callable[[list[int], datetime], SweepResult],
    now: datetime | None,
    batch_size: int,
    max_batches: int,
) -> SweepResult:
    now = now or timezone.now()
    total = SweepResult()
    completed = True
    for _ in range(max_batches):
        try:
            ids, failed = _locked_batch(due_field, batch, now, batch_size, total)
        except TRANSIENT:
            # A lost connection, a deadlock, a serialization failure: the batch rolled back.
            logger.warning("sweep batch on %s hit a transient error; retrying", due_field)
            _reconnect()
            try:
                ids, failed = _locked_batch(due_field, batch, now, batch_size, total)
            except TRANSIENT:
                logger.exception("sweep on %s left to the next run", due_field)
                _reconnect()
                completed = False
                break
        if failed and not _one_by_one(ids, due_field, batch, now, total):
            completed = False
            break
        if len(ids) < batch_size:
            break
    if completed:
        _record_run(due_field, total)
    return total


SWEEP_NAMES = {"recovery_due_at": "recovery", "care_due_at": "care"}


def _record_run(due_field: str, result: SweepResult) -> None:
    """One upsert: this sweep ran to its end now (wall-clock time, whatever `now` it swept)."""
    SweepRun.objects.bulk_create(
        [SweepRun(name=SWEEP_NAMES[due_field], finished_at=timezone.now(), result=asdict(result))],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["finished_at", "result"],
    )


def _locked_batch(
    due_field: str,
    batch: Callable[[list[int], datetime], SweepResult],
    now: datetime,
    batch_size: int,
    total: SweepResult,
) -> tuple[list[int], bool]:
    """One batch in one transaction: (the customers taken, whether it failed on their data).
    A transient error propagates (everything rolled back); any other is the data's."""
    with transaction.atomic():
        ids = list(
            Customer.objects.filter(**{f"{due_field}__lte": now})
            .order_by(due_field, "pk")
            .select_for_update(skip_locked=True, no_key=True)
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return ids, False
        try:
            with transaction.atomic():
                total += batch(ids, now)
        except TRANSIENT:
            raise
        except Exception:
            logger.exception("sweep batch on %s failed; retrying one by one", due_field)
            return ids, True
    return ids, False


def _one_by_one(ids, due_field, batch, now, total: SweepResult) -> bool:
    """Each customer of a failed batch alone; one whose own data fails is looked at again in
    an hour. False if the database itself failed: the rest is left to the next run."""
    for customer_id in ids:
        try:
            with transaction.atomic():
                total += batch([customer_id], now)
        except TRANSIENT:
            logger.exception("sweep on %s left to the next run", due_field)
            _reconnect()
            return False
        except Exception:
            logger.exception("sweep failed for customer %s; trying again later", customer_id)
            Customer.objects.filter(pk=customer_id).update(**{due_field: now + RETRY_LATER})
            total.failed += 1
    return True


def _reconnect() -> None:
    """Drop a broken connection so the next query opens a new one (unless a caller's
    transaction holds it: then there is nothing to retry here)."""
    if not connection.in_atomic_block:
        connection.close()


class _Ep(NamedTuple):
    """What a sweep decision needs of an episode: a row, not a model (thousands per batch)."""

    id: int
    customer_id: int
    kind: str
    occurred_at: datetime
    experience: int | None
    touchpoints: list
    location_id: int | None
    location_name: str | None
    location_tz: str | None


EP_FIELDS = (
    "id", "customer_id", "kind", "occurred_at", "experience", "touchpoints",
    "location_id", "location__name", "location__time_zone",
)  # fmt: skip


@dataclass
class _Batch:
    """What every decision in a batch may need, read set-based once, and what the applied
    plans wrote, to save set-based."""

    now: datetime
    locked: dict[int, LockedNarrative]
    people: dict[int, Any]  # id, name, organization_id
    orgs: dict[int, Organization]
    playbooks: dict[int, list[PlaybookSpec]]
    new_cases: list = field(default_factory=list)  # (case, trigger episodes, action texts, applied)
    changed: list[RecoveryCase] = field(default_factory=list)
    triggers: list[CaseTrigger] = field(default_factory=list)
    events: list[CaseEvent] = field(default_factory=list)
    marks: dict[int, dict] = field(default_factory=dict)
    # Customers with nothing left to do: they keep no due time in the past.
    settled: set[int] = field(default_factory=set)
    reopened: list[tuple[RecoveryCase, list[str]]] = field(default_factory=list)
    # Each case and the negatives it took in this batch: partner incidents open beside them.
    took: list[tuple[RecoveryCase, list[_Ep]]] = field(default_factory=list)
    # Where each customer getting a care case last visited: the case belongs to that queue.
    care_homes: dict[int, int | None] = field(default_factory=dict)
    # Each new care case's one-line explanation, by customer.
    why_now: dict[int, str] = field(default_factory=dict)
    # The variants of each playbook whose experiment runs, in draw order (id -> actions).
    variants: dict[int, dict[int, list[str]]] = field(default_factory=dict)

    @classmethod
    def read(cls, customer_ids: list[int], now: datetime) -> _Batch:
        locked = lock_customers(customer_ids)
        people = {
            row["id"]: row
            for row in Customer.objects.filter(pk__in=customer_ids).values(
                "id", "name", "organization_id"
            )
        }
        orgs = {
            org.pk: org
            for org in Organization.objects.filter(
                pk__in={p["organization_id"] for p in people.values()}
            )
        }
        playbooks = playbook_specs(orgs)
        batch = cls(now, locked, people, orgs, playbooks)
        batch.variants = running_experiments(
            [spec.id for specs in playbooks.values() for spec in specs if spec.id is not None]
        )
        return batch

    def org(self, customer_id: int) -> Organization:
        return self.orgs[self.people[customer_id]["organization_id"]]

    def open_cases(self, kind: str) -> dict[int, RecoveryCase]:
        """The customers' open cases of a kind, locked (after the customers: lock order)."""
        return {
            case.customer_id: case
            for case in RecoveryCase.objects.filter(
                customer_id__in=self.locked, kind=kind, status=CaseStatus.OPEN
            ).select_for_update(of=("self",))
        }

    def record(self, customer_id: int, applied: lifecycle.Applied) -> None:
        self.events += applied.events
        self.marks.setdefault(customer_id, {}).update(applied.marks)

    def apply(self, customer_id: int, plan: lifecycle.Plan, cases: dict[int, RecoveryCase]) -> None:
        """Carry out the lifecycle's plan for one customer (in memory; `write` saves)."""
        now, window = self.now, self.org(customer_id).recovery_outcome_window
        match plan:
            case lifecycle.Nothing():
                self.settled.add(customer_id)  # e.g. the grace period was lengthened, or drift
            case lifecycle.Open():
                self.open_case(customer_id, plan)
            case lifecycle.Resolve():
                case = cases[plan.case_id]
                self.record(
                    customer_id, lifecycle.resolve(case, plan, outcome_window=window, now=now)
                )
                self.changed.append(case)
            case lifecycle.Extend():
                case = cases[plan.case_id]
                self.record(customer_id, lifecycle.extend(case, plan, now=now))
                self.link(case, plan.triggers)
            case lifecycle.Reopen():
                case = cases[plan.case_id]
                self.record(
                    customer_id, lifecycle.reopen(case, plan, outcome_window=window, now=now)
                )
                self.link(case, plan.triggers)
                # The new deviation gets the actions its playbook suggests for it.
                ctx = _context(
                    CaseKind.RECOVERY,
                    cast(list[_Ep], list(plan.triggers)),
                    self.people[customer_id],
                    self.locked[customer_id],
                    self.org(customer_id),
                )
                playbook = first_match(self.playbooks.get(self.org(customer_id).pk, []), ctx)
                # The variant it drew when it opened, while that variant still runs.
                texts = self.variants.get(case.playbook_id or 0, {}).get(
                    case.variant_id or 0, playbook.actions
                )
                self.reopened.append((case, [render_action(t, ctx) for t in texts]))
            case _:
                raise AssertionError(f"the sweep does not carry out {plan!r}")

    def link(self, case: RecoveryCase, episodes) -> None:
        self.triggers += [
            CaseTrigger(case=case, episode_id=e.id, added_at=self.now) for e in episodes
        ]
        self.changed.append(case)
        self.took.append((case, list(episodes)))

    def open_case(self, customer_id: int, plan: lifecycle.Open) -> None:
        org, row = self.org(customer_id), self.locked[customer_id]
        # The sweep plans with its own episode rows, which also carry where they happened.
        episodes = cast(list[_Ep], list(plan.triggers))
        ctx = _context(plan.kind, episodes, self.people[customer_id], row, org)
        playbook = first_match(self.playbooks.get(org.pk, []), ctx)
        latest = episodes[-1] if episodes else None
        if plan.kind == CaseKind.RECOVERY:
            location_id, handled = (
                (latest.location_id if latest else None),
                (latest.occurred_at if latest else None),
            )
        else:
            location_id = self.care_homes.get(customer_id)
            # Only what happens after this counts as coming back (or being called).
            handled = max(filter(None, [row.state.last_visit_at, row.state.last_follow_up_at]))
        case, applied = lifecycle.open_case(
            plan,
            organization_id=org.pk,
            customer_id=customer_id,
            playbook=playbook,
            worst_experience=ctx.worst_experience,
            touchpoints=ctx.touchpoints,
            location_id=location_id,
            handled_until=handled,
            outcome_window=org.recovery_outcome_window,
            now=self.now,
            holdout_share=org.care_holdout_share,
            variant_ids=list(self.variants.get(playbook.id or 0, {})),
            why_now=self.why_now.get(customer_id, ""),
        )
        if case.held_out:
            texts = []  # nobody is meant to act: nothing to suggest
        else:
            source = self.variants.get(playbook.id or 0, {}).get(case.variant_id or 0)
            texts = [render_action(t, ctx) for t in source or playbook.actions]
        self.new_cases.append((case, episodes, texts, applied))
        self.marks.setdefault(customer_id, {}).update(applied.marks)

    def write(self, kind: str, due_field: str) -> None:
        if self.new_cases:
            cases = [case for case, _, _, _ in self.new_cases]
            insert_rows(RecoveryCase, cases, ignore_conflicts=True, match_on=("customer_id",))
            actions, triggers = [], []
            for case, episodes, texts, applied in self.new_cases:
                if case.pk is None:
                    # Someone else holds the open case the constraint allows: keep theirs.
                    logger.warning("open %s case exists for customer %s", kind, case.customer_id)
                    self.marks.pop(case.customer_id, None)
                    self.settled.add(case.customer_id)
                    continue
                triggers += [
                    CaseTrigger(case=case, episode_id=e.id, added_at=self.now) for e in episodes
                ]
                self.took.append((case, episodes))
                actions += lifecycle.suggest(case, texts, now=self.now)
                for event in applied.events:
                    event.case = case  # built before the insert gave the case its id
                self.events += applied.events
            insert_rows(CaseAction, actions)
            insert_rows(CaseTrigger, triggers)
        for case in self.changed:
            case.save()
        if self.reopened:
            last = dict(
                CaseAction.objects.filter(case__in=[case for case, _ in self.reopened])
                .values("case")
                .annotate(last=Max("position"))
                .values_list("case", "last")
            )
            insert_rows(
                CaseAction,
                [
                    action
                    for case, texts in self.reopened
                    for action in lifecycle.suggest(
                        case, texts, now=self.now, after_position=last.get(case.pk, 0)
                    )
                ],
            )
        if self.triggers:
            # ignore_conflicts: a reopened case may already hold one of these episodes.
            CaseTrigger.objects.bulk_create(self.triggers, ignore_conflicts=True)
        save_case_events(self.events, now=self.now)
        # A failure on a partner-run touchpoint: the partner's incident, beside the case.
        open_incidents_for(links=self.took, now=self.now)
        self._save_marks(due_field)

    def _save_marks(self, due_field: str) -> None:
        """New case marks and the due times they imply, for the whole batch in one statement.

        A customer the sweep found nothing to do for gets no due time in the past, whatever
        drift put it there, so a stale row cannot come back every run."""
        customers = []
        for customer_id, row in self.locked.items():
            marks = replace(row.marks, **self.marks.get(customer_id, {}))
            recovery_due, care_due = due_times(row.state, marks, row.policy)
            customer = Customer(pk=customer_id, recovery_due_at=recovery_due, care_due_at=care_due)
            if (
                customer_id in self.settled
                and (getattr(customer, due_field) or self.now) <= self.now
            ):
                setattr(customer, due_field, None)
            for name in MARK_FIELDS:
                setattr(customer, name, getattr(marks, name))
            customers.append(customer)
        update_rows(Customer, customers, ["recovery_due_at", "care_due_at", *MARK_FIELDS])


# --- recovery --------------------------------------------------------------------------------


def _recovery_batch(customer_ids: list[int], now: datetime) -> SweepResult:
    result = SweepResult(looked_at=len(customer_ids))
    b = _Batch.read(customer_ids, now)
    open_cases = b.open_cases(CaseKind.RECOVERY)
    episodes = _relevant_episodes(b.locked)
    resolved = _resolved_cases(b.locked, open_cases)
    by_id = {case.pk: case for case in [*open_cases.values(), *resolved.values()]}
    for customer_id, row in b.locked.items():
        plan = lifecycle.plan_recovery(
            state=row.state,
            marks=row.marks,
            policy=row.policy,
            open_case=open_cases.get(customer_id),
            resolved_case=resolved.get(customer_id),
            episodes=episodes.get(customer_id, []),
            now=now,
        )
        b.apply(customer_id, plan, by_id)
        result.count(plan)
    b.write(CaseKind.RECOVERY, "recovery_due_at")
    return result


def running_experiments(playbook_ids: list[int]) -> dict[int, dict[int, list[str]]]:
    """Per playbook with an experiment running (not ended, two or more active variants), its
    active variants' actions by id, in draw order (position, id). One query per batch."""
    if not playbook_ids:
        return {}
    found: dict[int, dict[int, list[str]]] = defaultdict(dict)
    for playbook_id, variant_id, actions in (
        PlaybookVariant.objects.active()
        .filter(playbook_id__in=playbook_ids, playbook__experiment_ended_at__isnull=True)
        .order_by("playbook_id", "position", "id")
        .values_list("playbook_id", "id", "actions")
    ):
        found[playbook_id][variant_id] = list(actions or [])
    return {p: variants for p, variants in found.items() if len(variants) >= 2}


def _relevant_episodes(locked: dict[int, LockedNarrative]) -> dict[int, list[_Ep]]:
    """Per customer, the negatives and follow-ups a decision may need, oldest first."""
    since: dict[int, datetime] = {}
    for customer_id, row in locked.items():
        anchor = row.state.last_negative_at or row.state.last_follow_up_at
        if anchor is not None:
            handled = row.marks.recovery_handled_until
            since[customer_id] = min(filter(None, [anchor - TRIGGER_LOOKBACK, handled]))
    if not since:
        return {}
    # One range over the batch (served by the customer timeline index); each customer's own
    # bound is applied here rather than as a thousand OR-ed conditions in SQL.
    rows = (
        Episode.objects.filter(customer_id__in=since, occurred_at__gte=min(since.values()))
        .filter(Q(experience__lt=0) | Q(kind__in=FOLLOW_UP_KINDS))
        .order_by("customer_id", "occurred_at", "id")
        .values_list(*EP_FIELDS)
    )
    out: dict[int, list[_Ep]] = defaultdict(list)
    for values in rows:
        episode = _Ep(*values)
        if episode.occurred_at >= since[episode.customer_id]:
            out[episode.customer_id].append(episode)
    return out


def _resolved_cases(locked, open_cases) -> dict[int, RecoveryCase]:
    """The resolved case the customer's marks name (for a double deviation), locked."""
    wanted = {
        customer_id: row.marks.recovery_resolved_at
        for customer_id, row in locked.items()
        if customer_id not in open_cases and row.marks.recovery_resolved_at is not None
    }
    if not wanted:
        return {}
    found: dict[int, RecoveryCase] = {}
    for case in (
        RecoveryCase.objects.filter(
            customer_id__in=wanted, kind=CaseKind.RECOVERY, status=CaseStatus.RESOLVED
        )
        .order_by("customer_id", "-resolved_at", "-id")
        .select_for_update(of=("self",))
    ):
        if case.resolved_at == wanted[case.customer_id]:
            found.setdefault(case.customer_id, case)
    return found


def _context(kind, episodes, person, row: LockedNarrative, org) -> CaseContext:
    latest = episodes[-1] if episodes else None
    touchpoints = {t["code"] for e in episodes for t in e.touchpoints}
    third_party = {t["code"] for e in episodes for t in e.touchpoints if t.get("third_party")}
    experiences = [e.experience for e in episodes if e.experience is not None]
    return CaseContext(
        kind=kind,
        episode_kinds=frozenset(e.kind for e in episodes),
        touchpoints=frozenset(touchpoints),
        third_party_touchpoints=frozenset(third_party),
        worst_experience=min(experiences) if experiences else None,
        standing=standing_of(
            visit_count=row.state.visit_count,
            total_spend=Decimal(row.state.total_spend or 0),
            is_regular=is_regular(row.state, row.policy),
            high_spend=org.high_spender_spend,
        ),
        first_name=first_name_of(person["name"]),
        usual_order=row.state.usual_order,
        happened_at=latest.occurred_at if latest else None,
        time_zone=(latest.location_tz if latest and latest.location_tz else org.time_zone),
        location_name=latest.location_name if latest and latest.location_name else "",
    )


# --- care ------------------------------------------------------------------------------------


def _care_batch(customer_ids: list[int], now: datetime) -> SweepResult:
    result = SweepResult(looked_at=len(customer_ids))
    b = _Batch.read(customer_ids, now)
    open_cases = b.open_cases(CaseKind.CARE)
    comebacks = _comebacks(b.locked, open_cases)
    recent = _recent_experiences(
        b,
        [
            c
            for c, row in b.locked.items()
            if c not in open_cases and is_regular(row.state, row.policy)
        ],
    )
    plans = {
        customer_id: lifecycle.plan_care(
            state=row.state,
            marks=row.marks,
            policy=row.policy,
            open_case=open_cases.get(customer_id),
            comeback=comebacks.get(customer_id),
            now=now,
            drifting=_drifting(recent.get(customer_id, []), row, b.org(customer_id)),
        )
        for customer_id, row in b.locked.items()
    }
    opening = [c for c, plan in plans.items() if isinstance(plan, lifecycle.Open)]
    b.care_homes = _last_visit_locations(b.locked, opening)
    b.why_now = _why_now_lines(b, opening, recent)
    by_id = {case.pk: case for case in open_cases.values()}
    for customer_id, plan in plans.items():
        b.apply(customer_id, plan, by_id)
        result.count(plan)
        # Looked at: their newest experience needs no second look for a drift.
        looked = b.locked[customer_id].state.last_experience_at
        if customer_id not in open_cases and looked is not None:
            b.marks.setdefault(customer_id, {})["drift_checked_until"] = looked
    b.write(CaseKind.CARE, "care_due_at")
    return result


class _Experience(NamedTuple):
    customer_id: int
    occurred_at: datetime
    experience: int


def _recent_experiences(b: _Batch, customer_ids: list[int]) -> dict[int, list[_Experience]]:
    """Per customer, their last experiences that carry one (up to the organization's drift
    window), oldest first: what drift and why-now read. One query over the batch."""
    if not customer_ids:
        return {}
    window = max(b.org(c).drift_window for c in customer_ids)
    rows = (
        Episode.objects.filter(customer_id__in=customer_ids, experience__isnull=False)
        .annotate(
            nth=Window(
                RowNumber(),
                partition_by=[F("customer_id")],
                order_by=[F("occurred_at").desc(), F("id").desc()],
            )
        )
        .filter(nth__lte=window)
        .order_by("customer_id", "-occurred_at", "-id")
        .values_list("customer_id", "occurred_at", "experience")
    )
    out: dict[int, list[_Experience]] = defaultdict(list)
    for customer_id, occurred_at, experience in rows:
        out[customer_id].append(_Experience(customer_id, occurred_at, cast(int, experience)))
    for customer_id, experiences in out.items():
        experiences.reverse()  # oldest first, as the rules read them
        del experiences[: -b.org(customer_id).drift_window]
    return out


def _drifting(experiences: list[_Experience], row: LockedNarrative, org: Organization) -> bool:
    """recovery.lifecycle.is_drifting over the batch's rows, by the organization's window and
    drop."""
    return lifecycle.is_drifting(
        [e.experience for e in experiences],
        newest_at=experiences[-1].occurred_at if experiences else None,
        marks=row.marks,
        window=org.drift_window,
        drop=org.drift_drop,
    )


# How many recent visits the why-now line reads for a weekday pattern.
WHY_NOW_VISITS = 30
TOUCHPOINT_LABELS: dict[str, str] = dict(Touchpoint.choices)


def _why_now_lines(
    b: _Batch, customer_ids: list[int], recent: dict[int, list[_Experience]]
) -> dict[int, str]:
    """Each new care case's one line (recovery.care_reasons.why_now), from two reads over the
    batch: the customers' recent visits and their earlier cases never followed up."""
    if not customer_ids:
        return {}
    visits: dict[int, list[datetime]] = defaultdict(list)
    for customer_id, occurred_at in (
        Episode.objects.filter(customer_id__in=customer_ids, kind__in=VISIT_KINDS)
        .annotate(
            nth=Window(
                RowNumber(),
                partition_by=[F("customer_id")],
                order_by=[F("occurred_at").desc(), F("id").desc()],
            )
        )
        .filter(nth__lte=WHY_NOW_VISITS)
        .values_list("customer_id", "occurred_at")
    ):
        visits[customer_id].append(occurred_at)
    earlier: dict[int, care_reasons.EarlierCase] = {}
    for customer_id, opened_at, touchpoints in (
        RecoveryCase.objects.filter(
            customer_id__in=customer_ids, status__in=(CaseStatus.OPEN, CaseStatus.DISMISSED)
        )
        .order_by("customer_id", "-opened_at", "-id")
        .values_list("customer_id", "opened_at", "touchpoints")
    ):
        if customer_id not in earlier:
            about = TOUCHPOINT_LABELS.get(touchpoints[0], "") if touchpoints else ""
            earlier[customer_id] = care_reasons.EarlierCase(opened_at=opened_at, about=about)
    lines = {}
    for customer_id in customer_ids:
        org = b.org(customer_id)
        lines[customer_id] = care_reasons.why_now(
            state=b.locked[customer_id].state,
            visits=visits.get(customer_id, []),
            experiences=[e.experience for e in recent.get(customer_id, [])],
            now=b.now,
            time_zone=org.time_zone,
            drift_window=org.drift_window,
            drift_drop=org.drift_drop,
            earlier_case=earlier.get(customer_id),
        )
    return lines


def _comebacks(locked, open_cases) -> dict[int, Episode]:
    """For open care cases: the first visit or outreach after the case's mark, if any."""
    since = {c: locked[c].marks.care_handled_until for c in open_cases}
    if not since:
        return {}
    bound = min((t for t in since.values() if t is not None), default=None)
    qs = Episode.objects.filter(customer_id__in=since, kind__in=[*VISIT_KINDS, *FOLLOW_UP_KINDS])
    if bound is not None:
        qs = qs.filter(occurred_at__gt=bound)
    found: dict[int, Episode] = {}
    for episode in qs.order_by("customer_id", "occurred_at", "id").only(
        "id", "customer_id", "occurred_at"
    ):
        mark = since[episode.customer_id]
        if mark is None or episode.occurred_at > mark:
            found.setdefault(episode.customer_id, episode)
    return found


def _last_visit_locations(locked, customer_ids: list[int]) -> dict[int, int | None]:
    """Where each customer last visited: care cases belong to that location's queue."""
    last = {c: locked[c].state.last_visit_at for c in customer_ids}
    if not last:
        return {}
    homes: dict[int, int | None] = {}
    for customer_id, occurred_at, location_id in (
        Episode.objects.filter(
            customer_id__in=last, kind__in=VISIT_KINDS, occurred_at__in=set(last.values())
        )
        .order_by("customer_id", "-id")
        .values_list("customer_id", "occurred_at", "location_id")
    ):
        if occurred_at == last[customer_id]:
            homes.setdefault(customer_id, location_id)
    return homes
