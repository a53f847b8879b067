"""One scenario end to end: an organization of its own, the tills' load with the fault injected
during it, the sweeps given time to catch up, then the ledger held against the database."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from accounts.services import create_api_key, create_organization
from cxcore.models import Customer
from cxcore.rules import NarrativeState
from cxcore.services.episodes import narrative_from_episodes
from faults import oracle
from faults.load import OPEN_CASE_STORIES, STORIES, Tills, count_ledger, plan_writes
from faults.scenarios import SCENARIOS, Fault
from faults.stack import Stack, wait_until
from recovery.models import SweepRun

WRITES_PER_CUSTOMER = sum(len(episodes) for episodes in STORIES.values()) / len(STORIES)


@dataclass
class Result:
    scenario: str
    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    duplicated: int = 0
    lost: int = 0
    other_5xx: int = 0
    db_503: int = 0
    connection_errors: int = 0
    attempts: int = 0
    cases_expected: int = 0
    cases_found: int = 0
    cases_differ: int = 0  # customers in one set and not the other (or with two open cases)
    stray: int = 0  # rows in the organization that no ledger write accounts for
    drifted: int = 0  # customers whose narrative state disagrees with their episodes
    misnamed: int = 0  # acknowledgements naming another episode than the one stored
    oracle_disagrees: bool = False  # with the load's stories, though every write was stored
    seconds: float = 0.0
    slowest: float = 0.0
    replayed: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.cases_differ
            or self.other_5xx
            or self.stray
            or self.drifted
            or self.misnamed
            or self.oracle_disagrees
            or self.refused
            or self.acknowledged < self.sent
        )


def sweeps_caught_up(organization_id: int, *, since: float) -> bool:
    """A recovery sweep ended after the load did and nobody in the organization is due."""
    finished = SweepRun.objects.filter(name="recovery").values_list("finished_at", flat=True)
    last = finished.first()
    if last is None or last.timestamp() <= since:
        return False
    return not Customer.objects.filter(
        organization_id=organization_id, recovery_due_at__lte=timezone.now()
    ).exists()


def drifted_narratives(organization_id: int) -> int:
    """DESIGN.md invariant 3 after the faults: the state on each row, recomputed from scratch."""
    customers = Customer.objects.filter(organization_id=organization_id)
    return sum(NarrativeState.of(c) != narrative_from_episodes(c.pk) for c in customers)


def run_scenario(
    stack: Stack,
    name: str,
    *,
    seconds: float,
    rate: float,
    seed: int = 12,
    settle_timeout: float = 60,
) -> Result:
    rng = random.Random(seed)
    result = Result(scenario=name)
    organization = create_organization(name=f"Faults {name}", location_names=["Till"])
    till = organization.locations.get()
    _, api_key = create_api_key(organization=organization, name="faults till", location=till)
    start = timezone.now()
    customers = max(len(STORIES), math.ceil(rate * seconds / WRITES_PER_CUSTOMER))
    writes = plan_writes(customers=customers, start=start, rng=rng)

    stop = threading.Event()
    fault = Fault(stack=stack, seconds=seconds, stop=stop, rng=rng)
    fault_errors: list[BaseException] = []

    def inject() -> None:
        try:
            SCENARIOS[name](fault)
        except BaseException as exc:
            fault_errors.append(exc)

    tills = Tills(base_url=stack.base_url, api_key=api_key, writes=writes, rate=rate)
    began = time.monotonic()
    injector = threading.Thread(target=inject, name=f"fault {name}", daemon=True)
    try:
        injector.start()
        tills.start()
        if not tills.join(timeout=seconds * 3 + 120):
            result.notes.append("the tills did not finish in time")
    finally:
        stop.set()  # a fault still waiting to undo itself does so now
        injector.join(30)
        tills.stop.set()
    if fault_errors or tills.errors:
        raise RuntimeError(f"{name}: the harness failed: {fault_errors + tills.errors!r}")
    load_end = time.time()
    stack.check_running()

    try:
        wait_until(
            lambda: sweeps_caught_up(organization.pk, since=load_end),
            settle_timeout,
            "the sweeps to catch up",
        )
    except TimeoutError as exc:
        result.notes.append(str(exc))
    result.seconds = time.monotonic() - began
    now = timezone.now()

    counts = count_ledger(writes)
    result.sent, result.acknowledged = counts.sent, counts.acknowledged
    result.attempts, result.db_503 = counts.attempts, counts.db_503
    result.other_5xx, result.connection_errors = counts.other_5xx, counts.connection_errors
    result.refused, result.slowest = counts.refused, counts.slowest
    result.replayed = counts.replayed

    rows = oracle.stored_by_key(organization.pk)
    keys = {write.key for write in writes}
    result.stored = sum(len(ids) for key, ids in rows.items() if key in keys)
    result.duplicated = sum(1 for key, ids in rows.items() if key in keys and len(ids) > 1)
    result.stray = sum(len(ids) for key, ids in rows.items() if key not in keys)
    result.lost = sum(1 for write in writes if write.acknowledged and not rows.get(write.key))
    # An acknowledgement names the episode it stored: a replay must name the stored one.
    result.misnamed = sum(
        1
        for write in writes
        if write.acknowledged and rows.get(write.key) and write.episode_id not in rows[write.key]
    )
    if result.misnamed:
        result.notes.append(f"{result.misnamed} acknowledgements name an episode not stored")

    expected = oracle.expected_open_cases(organization.pk, now=now)
    found = oracle.open_cases(organization.pk)
    result.cases_expected, result.cases_found = len(expected), len(found)
    result.cases_differ = len(expected ^ set(found)) + len(found) - len(set(found))

    result.drifted = drifted_narratives(organization.pk)
    if result.drifted:
        result.notes.append(f"{result.drifted} customers' narrative state drifted")
    # The stories say the same as the oracle whenever every write was stored.
    by_card = oracle.customers_by_card(organization.pk)
    story_cases = {by_card.get(w.card) for w in writes if w.story in OPEN_CASE_STORIES}
    if not result.lost and result.stored == len(writes) and story_cases != expected:
        result.oracle_disagrees = True  # the harness is wrong, not the app: still not "ok"
        result.notes.append(
            f"the stories expect {len(story_cases)} open cases, the SQL oracle {len(expected)}"
        )
    result.notes += fault.notes
    slowest = max(writes, key=lambda w: max(w.seconds, default=0.0))
    if max(slowest.seconds, default=0.0) > 5:
        timings = ", ".join(
            f"{what} {t:.1f}s" for what, t in zip(slowest.attempts, slowest.seconds, strict=True)
        )
        result.notes.append(f"the slowest write's attempts: {timings}")
    unacknowledged = [w for w in writes if not w.acknowledged]
    if unacknowledged:
        last = Counter(w.final for w in unacknowledged)
        result.notes.append(f"{len(unacknowledged)} writes never acknowledged (last: {last})")
    if result.refused:
        result.notes.append(f"writes refused: {dict(result.refused)}")
    connection.close()
    return result


COLUMNS = (
    ("scenario", "scenario"),
    ("sent", "sent"),
    ("acknowledged", "acknowledged"),
    ("stored", "stored"),
    ("duplicated", "duplicated"),
    ("lost", "lost"),
    ("5xx", "other_5xx"),
    ("503 (db, retried)", "db_503"),
    ("connection errors", "connection_errors"),
    ("cases expected", "cases_expected"),
    ("cases found", "cases_found"),
)


def _head() -> str:
    head = "| " + " | ".join(title for title, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" if attr == "scenario" else "---:" for _, attr in COLUMNS) + "|"
    return f"{head}\n{rule}"


def _row(result: Result) -> str:
    return "| " + " | ".join(str(getattr(result, attr)) for _, attr in COLUMNS) + " |"


def summary(results: list[Result]) -> str:
    """Every scenario in one table, for the end of a run."""
    return "\n".join([_head(), *(_row(result) for result in results)]) + "\n"


def table(result: Result) -> str:
    """One Markdown table per scenario, its notes underneath."""
    verdict = "ok" if result.ok else "FAILED"
    load = f"{result.attempts} requests in {result.seconds:.0f}s"
    load += f", slowest attempt {result.slowest:.2f}s, {result.replayed} acknowledged by a replay"
    notes = "; ".join([load, *result.notes])
    return f"{_head()}\n{_row(result)}\n\n{verdict}: {notes}\n"
