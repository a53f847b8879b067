"""Invariant 4, the location half: every route with an object id, called for our own objects
at Harbour Rd by a key and by members limited to Main St.

DESIGN.md: location limits narrow what a member or key *browses* (the queue, insights, lists,
a case's page) and where it may *log*; they never hide the customer in front of the till (the
customer, their narrative, the sidebar and its prompts stay readable, and the till may act on
those prompts wherever the case was opened). A write the limit refuses changes nothing: every
row of the organization is the same afterwards, value for value.

LOCATION_ROUTES says, for each route of tests/cxcore/test_tenancy.py's ROUTES that names an
object, what each limited actor gets; a route missing from it fails
test_every_route_with_an_object_is_in_the_location_table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiKey, Device, Invitation, Location, Membership, Role
from accounts.services import add_member, create_api_key
from cxcore.models import (
    Customer,
    Episode,
    ExperienceCorrection,
    IdempotencyRecord,
    Identifier,
)
from cxcore.services import EpisodeInput, record_episode
from tests.conftest import key_client
from tests.cxcore import test_tenancy as tenancy_table
from tests.cxcore.test_tenancy import API, PAGE, ROUTES, page_client, send, session_client
from tests.factories import UserFactory


@dataclass(frozen=True)
class Outcome:
    status: int
    changes: bool  # False: refused, so every row must be as it was


def ok(status: int) -> Outcome:
    return Outcome(status, True)


def refused(status: int) -> Outcome:
    return Outcome(status, False)


# Who is limited to Main St: on the API a key and a staff member's session; on pages staff,
# and on the owners' and managers' pages a manager too (staff are refused those by role).
API_ACTORS = ("till_key", "staff_session")
PAGE_ACTORS = ("staff",)
MANAGER_PAGE_ACTORS = ("staff", "manager")

READ = ok(200)
NOT_HERE = refused(404)  # browsing is location-limited: a case at Harbour Rd is not ours to see
ROLE = refused(403)  # refused by role before any object is looked up

# route name -> actor -> one Outcome per call of the route (in ROUTES' order).
LOCATION_ROUTES: dict[str, dict[str, tuple[Outcome, ...]]] = {
    # owners only, and owners are never limited to a location
    "api-key-revoke": {"staff": (ROLE,), "manager": (ROLE,)},
    "customer-audit": {"staff": (ROLE,), "manager": (ROLE,)},
    # the customer pages: the customer and their whole narrative, from any location
    "customer-page": {"staff": (READ,)},
    "customer-notes": {"staff": (ok(302),)},  # notes are the customer's, for every shift
    "customer-outreach": {"staff": (ok(302),)},  # logged at the member's own location
    # correcting an episode logged at Harbour Rd is a write there: refused, as in the API
    "customer-experience": {"staff": (refused(403),)},
    # merging closes cases: not over a case at a location the manager cannot see
    "customer-merge": {"staff": (ROLE, ROLE), "manager": (READ, refused(403))},
    # the queue and the case page browse cases: a case opened at Harbour Rd is not there
    "queue-bulk": {"staff": (ROLE,), "manager": (refused(302),)},
    "case-page": {"staff": (ROLE, ROLE), "manager": (NOT_HERE, NOT_HERE)},
    "queue-case": {"staff": (ROLE,), "manager": (NOT_HERE,)},
    # playbooks are the organization's, not a location's
    # (the form posted lacks the playbook's other fields: a 400 naming them, nothing saved)
    "playbook-edit": {"staff": (ROLE, ROLE), "manager": (READ, refused(400))},
    "playbook-move": {"staff": (ROLE,), "manager": (ok(302),)},
    # the till: the customer in front of it, their prompts and acting on them, from anywhere
    "pos-customer": {"staff": (READ,)},
    "pos-log": {"staff": (ok(200),)},  # logged at the till's own location
    "pos-case": {"staff": (ok(200),)},
    # the API
    "api-episode-create": {a: (ok(201),) for a in API_ACTORS},  # at the actor's location
    "api-episode-bulk": {a: (ok(200),) for a in API_ACTORS},
    "api-episode-detail": {a: (READ,) for a in API_ACTORS},
    "api-episode-experience": {a: (refused(403),) for a in API_ACTORS},
    "api-customer-detail": {a: (READ, ok(200)) for a in API_ACTORS},
    "api-customer-timeline": {a: (READ,) for a in API_ACTORS},
    "api-case-detail": {a: (NOT_HERE,) for a in API_ACTORS},
    "api-case-acknowledge": {a: (ok(200),) for a in API_ACTORS},  # a prompt the till shows
    "api-case-assign": {a: (NOT_HERE,) for a in API_ACTORS},
    "api-case-resolve": {a: (ok(200),) for a in API_ACTORS},
    "api-case-dismiss": {a: (NOT_HERE,) for a in API_ACTORS},
    "api-case-not-now": {a: (ok(200),) for a in API_ACTORS},
    "api-sidebar": {a: (READ, READ) for a in API_ACTORS},
    "api-customer-merge": {a: (ROLE,) for a in API_ACTORS},  # owners, managers, org keys
    # data rights: owners and organization-wide keys only (both reach every location)
    "api-customer-export": {a: (ROLE,) for a in API_ACTORS},
    "api-customer-erase": {a: (ROLE,) for a in API_ACTORS},
    "api-read-audit": {a: (ROLE,) for a in API_ACTORS},
    "api-visits": {a: (ok(201),) for a in API_ACTORS},
    "api-playbook-order": {a: (ROLE,) for a in API_ACTORS},
    "api-playbook-detail": {a: (READ, ROLE) for a in API_ACTORS},
    # a check for the customer from Harbour Rd is logged where the key or member is
    "api-check-create": {a: (ok(201),) for a in API_ACTORS},
    # webhooks: owners and organization-wide keys only, like the data rights
    "webhook-endpoint-action": {"staff": (ROLE,), "manager": (ROLE,)},
    "api-webhook-detail": {a: (ROLE, ROLE, ROLE) for a in API_ACTORS},
    "api-webhook-test": {a: (ROLE,) for a in API_ACTORS},
    "api-webhook-rotate-secret": {a: (ROLE,) for a in API_ACTORS},
    "api-webhook-deliveries": {a: (ROLE,) for a in API_ACTORS},
    "api-webhook-replay": {a: (ROLE,) for a in API_ACTORS},
    # a location's own settings pages: owners only
    "settings-location-edit": {"staff": (ROLE, ROLE), "manager": (ROLE, ROLE)},
    "settings-location-archive": {"staff": (ROLE,), "manager": (ROLE,)},
    "settings-location-restore": {"staff": (ROLE,), "manager": (ROLE,)},
    # the team and imports: owners only
    "team-member": {"staff": (ROLE, ROLE), "manager": (ROLE, ROLE)},
    "team-member-deactivate": {"staff": (ROLE,), "manager": (ROLE,)},
    "team-member-reactivate": {"staff": (ROLE,), "manager": (ROLE,)},
    "team-invitation-resend": {"staff": (ROLE,), "manager": (ROLE,)},
    "team-invitation-revoke": {"staff": (ROLE,), "manager": (ROLE,)},
    "import-batch": {"staff": (ROLE,), "manager": (ROLE,)},
    "import-confirm": {"staff": (ROLE,), "manager": (ROLE,)},
    "import-undo": {"staff": (ROLE,), "manager": (ROLE,)},
    "import-rejected": {"staff": (ROLE,), "manager": (ROLE,)},
    # tills: a manager runs the tills, and resets the PINs, of their own locations only
    "device-revoke": {"staff": (ROLE,), "manager": (NOT_HERE,)},
    "pin-reset": {"staff": (ROLE,), "manager": (NOT_HERE,)},
    # partners are the organization's; their incidents at Harbour Rd are not a Main St
    # manager's to see or answer, nor a Main St key's to list
    "partner-page": {"staff": (ROLE,), "manager": (READ,)},
    "partner-edit": {"staff": (ROLE, ROLE), "manager": (ROLE, ROLE)},
    "partner-incident": {"staff": (ROLE,), "manager": (NOT_HERE,)},
    "api-partner-incidents": {"till_key": (READ,), "staff_session": (ROLE,)},
    # switching to one's own organization is not a location's business
    "switch-organization": {"staff": (ok(302),)},
}

OBJECT_ROUTES = sorted(name for name, route in ROUTES.items() if route.names_theirs)


def test_every_route_with_an_object_is_in_the_location_table():
    missing = sorted(set(OBJECT_ROUTES) - set(LOCATION_ROUTES))
    assert not missing, f"Add to LOCATION_ROUTES ({__name__}): {missing}"
    # An entry for a route not in ROUTES (yet: one another branch adds) is left alone.
    present = {name: by_actor for name, by_actor in LOCATION_ROUTES.items() if name in ROUTES}
    assert not sorted(set(present) - set(OBJECT_ROUTES)), "names routes without an object"
    for name, by_actor in present.items():
        route = ROUTES[name]
        wanted = API_ACTORS if route.kind == API else PAGE_ACTORS
        if route.kind == PAGE and route.who != "members":
            wanted = MANAGER_PAGE_ACTORS
        assert set(by_actor) == set(wanted), (name, sorted(by_actor))
        for outcomes in by_actor.values():
            assert len(outcomes) == len(route.calls), name


def test_the_location_table_covers_a_new_route(monkeypatch):
    """The check above is what a new route meets: prove it fails without an entry."""
    monkeypatch.delitem(LOCATION_ROUTES, "pos-customer")
    with pytest.raises(AssertionError, match="pos-customer"):
        test_every_route_with_an_object_is_in_the_location_table()


@pytest.fixture
def at_harbour(org, main_st, harbour):
    """Our objects at Harbour Rd: a customer with a complaint there and its open case, a
    second customer (a duplicate to merge), a playbook and a key limited to Harbour Rd."""
    from recovery.models import Playbook, RecoveryCase
    from recovery.sweep import sweep_recovery

    complaint = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="complaint",
            identifiers={"phone": "07400 222222"},
            name="Hana",
            summary="Waited 40 minutes at Harbour Rd",
            location=harbour,
            experience=-2,
            occurred_at=timezone.now() - timedelta(days=1),
        ),
    ).episode
    duplicate = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="visit",
            identifiers={"phone": "07400 333333"},
            name="Hana B",
            location=harbour,
            occurred_at=timezone.now() - timedelta(days=3),
        ),
    ).episode
    sweep_recovery(now=timezone.now())
    case = RecoveryCase.objects.get(customer_id=complaint.customer_id)
    assert case.location_id == harbour.pk and case.show_at_visit
    playbook = Playbook.objects.create(organization=org, name="Our own playbook")
    key, _raw = create_api_key(organization=org, name="Harbour till", location=harbour)
    names = {
        "customer": complaint.customer_id,
        "episode": complaint.pk,
        "case": case.pk,
        "playbook": playbook.pk,
        "key": key.pk,
        "ours": duplicate.customer_id,
        "location": harbour.pk,
        "organization": org.pk,
    }
    # A barista of Harbour Rd only (with a PIN), an invitation, Harbour Rd's till and a batch.
    barista = UserFactory.create(name="Harbour barista")
    add_member(organization=org, user=barista, role=Role.STAFF, locations=[harbour])
    names.update(tenancy_table.their_team_and_tills(org, harbour))
    names["member"] = Membership.objects.get(organization=org, user=barista).pk
    Membership.objects.filter(pk=names["member"]).update(pin_hash="!not-a-pin")
    if hasattr(tenancy_table, "their_partner"):  # the partners app, where it is installed
        names.update(tenancy_table.their_partner(org, case))
    if hasattr(tenancy_table, "their_webhook"):  # the webhooks app, where it is installed
        delivery = tenancy_table.their_webhook(org)
        names.update(webhook=delivery.endpoint_id, delivery=delivery.pk)
    return names


def rows() -> dict[str, list[dict]]:
    """Every row a request of ours could change, value for value (a key's last use aside:
    using a key is not a change to what it may do)."""
    from imports.models import ImportBatch
    from partners.models import Partner, PartnerIncident
    from recovery.models import CaseAction, CaseEvent, CaseTrigger, Playbook, RecoveryCase

    models = [Customer, Identifier, Episode, ExperienceCorrection, IdempotencyRecord,
              RecoveryCase, CaseTrigger, CaseAction, CaseEvent, Playbook, Membership,
              Location, Invitation, Device, ImportBatch, Partner, PartnerIncident]  # fmt: skip
    found = {m.__name__: list(m._default_manager.order_by("pk").values()) for m in models}
    found["ApiKey"] = [
        {k: v for k, v in key.items() if k != "last_used_at"}
        for key in ApiKey.objects.order_by("pk").values()
    ]
    return found


def client_for(actor: str, request):
    if actor.endswith("_key"):
        return key_client(request.getfixturevalue(actor))
    if actor.endswith("_session"):
        return session_client(request.getfixturevalue(actor.removesuffix("_session")))
    return page_client(request.getfixturevalue(actor))


CASES = [
    (name, actor)
    for name in sorted(set(LOCATION_ROUTES) & set(ROUTES))
    for actor in LOCATION_ROUTES[name]
]


@pytest.mark.parametrize(("name", "actor"), CASES)
def test_a_location_limited_actor_on_our_objects_at_another_location(
    request, name, actor, at_harbour
):
    route = ROUTES[name]
    client = client_for(actor, request)
    client.raise_request_exception = False
    for call, outcome in zip(route.calls, LOCATION_ROUTES[name][actor], strict=True):
        before = rows()
        response = send(client, route, call, at_harbour)
        assert response.status_code == outcome.status, (
            name,
            actor,
            call.method,
            response.status_code,
            getattr(response, "content", b"")[:300],
        )
        if not outcome.changes:
            assert rows() == before, (name, actor, call.method, "a refused request changed rows")


def test_the_customer_page_refuses_correcting_an_episode_logged_elsewhere_and_says_where(
    staff, owner, at_harbour
):
    episode = Episode.objects.get(pk=at_harbour["episode"])
    url = f"/customers/{at_harbour['customer']}/experience/"
    body = {"episode": episode.pk, "experience": "2", "reason": "Was fine in the end"}

    response = page_client(staff).post(url, body)

    assert response.status_code == 403
    assert "This was logged at Harbour Rd: correct it from there." in response.content.decode()
    episode.refresh_from_db()
    assert episode.experience == -2 and not ExperienceCorrection.objects.exists()
    # The owner, who may act at Harbour Rd, may correct it.
    assert page_client(owner).post(url, body).status_code == 302
    episode.refresh_from_db()
    assert episode.experience == 2
