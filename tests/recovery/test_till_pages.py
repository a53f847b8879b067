"""The till (/pos/) through Django's test client: acting on prompts from any location, what
"Done" needs, what the card says afterwards, the quick forms, finding people, the till's own
log-out and location switch. The browser flows are in tests/browser/test_pos.py."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from accounts.services import add_member
from cxcore.models import Episode
from recovery.models import CaseEvent, RecoveryCase
from recovery.services import create_default_playbooks
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory, IdentifierFactory, UserFactory
from tests.recovery.conftest import LATTE, log


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def harbour_staff(org, harbour):
    user = UserFactory.create(name="Hana at the harbour")
    add_member(organization=org, user=user, role=Role.STAFF, locations=[harbour])
    return user


@pytest.fixture
def dan_case(org, main_st):
    """The forgotten-order regular; his case opened at Main St."""
    create_default_playbooks(organization=org)
    dan = CustomerFactory.create(organization=org, name="Daniel Reyes")
    IdentifierFactory(customer=dan, kind="phone", value="+447400900555")
    IdentifierFactory(customer=dan, kind="card", value="LOYAL-7")
    now = timezone.now()
    for days in (30, 20, 12):
        log(org, dan, now - timedelta(days=days), kind="order", location=main_st, items=[LATTE])
    log(
        org, dan, now - timedelta(days=9), kind="complaint", location=main_st, experience=-2,
        summary="The cashier forgot my salad and latte",
        touchpoints=[{"code": "order_accuracy", "third_party": False}],
    )  # fmt: skip
    sweep_recovery(now=now)
    return dan, RecoveryCase.objects.get(customer=dan)


def case_url(case, action: str) -> str:
    return reverse("pos-case", args=[case.pk, action])


def sidebar_of(client, customer) -> str:
    response = client.get(reverse("pos-customer", args=[customer.pk]))
    assert response.status_code == 200
    return response.content.decode()


# --- acting on a prompt opened at another location --------------------------------------------


def test_staff_at_another_location_see_the_prompt_and_put_it_right_there(
    harbour_staff, dan_case, harbour
):
    dan, case = dan_case
    client = logged_in(harbour_staff)
    body = sidebar_of(client, dan)
    assert "Daniel — the cashier forgot my salad and latte · 9 days ago" in body
    apology = case.actions.order_by("position", "id").first()
    response = client.post(case_url(case, "resolve"), {"actions": [apology.pk]})
    assert response.status_code == 200
    assert "the case is closed" in response.content.decode()
    case.refresh_from_db()
    assert case.status == "resolved" and case.closed_by == harbour_staff
    episode = Episode.objects.get(pk=case.resolution_episode_id)
    assert episode.location == harbour and episode.summary == apology.text


@pytest.mark.parametrize("action", ["acknowledge", "not-now"])
def test_staff_at_another_location_acknowledge_or_defer_the_prompt(harbour_staff, dan_case, action):
    _, case = dan_case
    assert logged_in(harbour_staff).post(case_url(case, action)).status_code == 200
    case.refresh_from_db()
    assert case.is_open and case.last_acted_at is not None


def test_a_case_not_shown_at_the_till_is_not_the_other_locations_to_act_on(
    harbour_staff, staff, dan_case
):
    _, case = dan_case
    RecoveryCase.objects.filter(pk=case.pk).update(show_at_visit=False)
    assert logged_in(harbour_staff).post(case_url(case, "acknowledge")).status_code == 404
    # Main St, where it was opened, still may: its own cases are its to work.
    assert logged_in(staff).post(case_url(case, "acknowledge")).status_code == 200


@pytest.mark.parametrize("action", ["resolve", "acknowledge", "not-now"])
def test_another_organizations_till_gets_404_and_changes_nothing(outsider, dan_case, action):
    _, case = dan_case
    response = logged_in(outsider).post(case_url(case, action), {"note": "x"})
    assert response.status_code == 404
    case.refresh_from_db()
    assert case.is_open and case.last_acted_at is None


def test_a_second_tills_late_tap_is_told_the_case_is_already_closed(harbour_staff, staff, dan_case):
    _, case = dan_case
    logged_in(staff).post(case_url(case, "resolve"), {"note": "Comped his latte"})
    late = logged_in(harbour_staff).post(case_url(case, "resolve"), {"note": "Me too"})
    assert late.status_code == 200  # shown in the sidebar, not swallowed as an error
    assert "already" in late.content.decode().lower()
    assert Episode.objects.filter(kind="recovery").count() == 1


def test_a_reopened_case_at_the_till_says_second_time_and_offers_only_the_new_actions(
    staff, org, main_st, dan_case
):
    """Issue 11: the new episode first, the new deviation's actions to tick, and what was done
    the first time as history, not as tick boxes."""
    from recovery.services import resolve_case

    dan, case = dan_case
    first = list(case.actions.order_by("position", "id"))
    resolve_case(case=case, action_ids=[first[0].pk], note="Comped the latte")
    later = timezone.now() + timedelta(minutes=5)
    log(org, dan, later, kind="complaint", experience=-1, location=main_st,
        summary="Waited 40 minutes for a flat white",
        touchpoints=[{"code": "wait", "third_party": False}])  # fmt: skip
    assert sweep_recovery(now=later + timedelta(minutes=1)).reopened == 1

    body = sidebar_of(logged_in(staff), dan)
    prompt = body[body.index(f'id="prompt-{case.pk}"') : body.index("</details>")]
    assert '<span class="badge second">Second time</span>' in prompt
    assert "Daniel — waited 40 minutes for a flat white" in prompt
    assert prompt.index("Waited 40 minutes") < prompt.index("Already done:")
    assert "forgot my salad" not in prompt  # the old round's story is not the one told
    assert f"<li>✓ {first[0].text}</li>" in prompt
    offered = {int(v) for v in re.findall(r'name="actions" value="(\d+)"', prompt)}
    new_round = set(case.actions.exclude(pk__in=[a.pk for a in first]).values_list("pk", flat=True))
    assert offered and offered == new_round
    assert "Apologise to Daniel for the wait" in prompt


# --- "Done — close it" needs to know what was done --------------------------------------------


@pytest.mark.parametrize("note", ["", "   "])
def test_done_with_nothing_ticked_and_no_note_asks_what_was_done(staff, dan_case, note):
    _, case = dan_case
    response = logged_in(staff).post(case_url(case, "resolve"), {"note": note})
    assert response.status_code == 422
    body = response.content.decode()
    assert "What did you do?" in body
    # The error is on the form, tied to the note for screen readers.
    assert f'aria-describedby="resolve-error-{case.pk}"' in body
    case.refresh_from_db()
    assert case.is_open
    assert not Episode.objects.filter(kind="recovery").exists()
    assert not CaseEvent.objects.filter(case=case, type="resolved").exists()


def test_a_note_alone_is_enough_to_close(staff, dan_case):
    _, case = dan_case
    logged_in(staff).post(case_url(case, "resolve"), {"note": "Called him, he's fine"})
    case.refresh_from_db()
    assert case.status == "resolved"
    assert Episode.objects.get(kind="recovery").summary == "Called him, he's fine"


# --- what the card says afterwards --------------------------------------------------------------


def last_time_line(body: str) -> str:
    match = re.search(r'<p class="last-time">(.*?)</p>', body, re.S)
    assert match, body
    return " ".join(re.sub(r"<[^>]+>", " ", match[1]).split())


def test_after_closing_the_card_says_it_was_put_right_just_now(staff, dan_case):
    dan, case = dan_case
    client = logged_in(staff)
    assert "very negative" in last_time_line(sidebar_of(client, dan))
    latte = case.actions.order_by("position", "id")[1]
    body = client.post(case_url(case, "resolve"), {"actions": [latte.pk]}).content.decode()
    line = last_time_line(body)
    assert line == f"Last time: put right — {latte.text} · just now"
    assert "negative" not in line


def test_not_now_collapses_the_prompt_to_its_headline(staff, dan_case):
    _, case = dan_case
    body = logged_in(staff).post(case_url(case, "not-now")).content.decode()
    prompt = re.search(rf'<details class="prompt[^"]*" id="prompt-{case.pk}"[^>]*>', body)
    assert prompt and " open" not in prompt[0]
    found = re.search(r"<summary[^>]*>(.*?)</summary>", body, re.S)
    assert found is not None
    summary = found[1]
    assert "Daniel — the cashier forgot my salad and latte" in summary
    # Looked up again, the prompt is open again: "not now" is for this moment.
    again = sidebar_of(logged_in(staff), case.customer)
    assert re.search(rf'<details class="prompt[^"]*" id="prompt-{case.pk}" open', again)


# --- the quick forms ----------------------------------------------------------------------------


def test_the_complaint_form_preselects_nothing_and_labels_every_select(staff, dan_case):
    dan, _ = dan_case
    body = sidebar_of(logged_in(staff), dan)
    selects = re.findall(r'<select[^>]*id="([^"]+)"[^>]*>(.*?)</select>', body, re.S)
    assert {"complaint-touchpoint", "complaint-experience"} <= {id_ for id_, _ in selects}
    for id_, options in selects:
        assert f'<label for="{id_}"' in body, id_
        assert " selected" not in options, id_
        assert re.match(r'\s*<option value="">', options), id_
    assert re.search(r'<select[^>]*id="complaint-touchpoint"[^>]*required', body)
    assert re.search(r'<select[^>]*id="complaint-experience"[^>]*required', body)


def test_a_complaint_without_touchpoint_or_how_bad_is_refused_naming_both(staff, dan_case):
    dan, _ = dan_case
    before = Episode.objects.count()
    response = logged_in(staff).post(
        reverse("pos-log", args=[dan.pk]), {"kind": "complaint", "summary": "Cold coffee"}
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "Choose where it went wrong." in body and "Choose how bad it was." in body
    assert 'aria-invalid="true"' in body
    assert "Cold coffee" in body  # what was typed is kept
    assert Episode.objects.count() == before


def test_a_complete_complaint_is_logged_at_the_till(staff, dan_case, main_st):
    dan, _ = dan_case
    response = logged_in(staff).post(
        reverse("pos-log", args=[dan.pk]),
        {"kind": "complaint", "touchpoint": "wait", "experience": "-1", "summary": "Slow"},
    )
    assert response.status_code == 200
    episode = Episode.objects.filter(kind="complaint").latest("recorded_at")
    assert episode.experience == -1 and episode.touchpoints[0]["code"] == "wait"
    assert episode.location == main_st


def test_order_lines_in_the_narrative_show_their_items(staff, dan_case):
    dan, _ = dan_case
    body = sidebar_of(logged_in(staff), dan)
    assert body.count("Almond-milk latte ×1 £3.60") == 3


# --- finding the customer ------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["0555", "900555", "Reyes Daniel", "daniel reyes", "LOYAL-7"])
def test_the_till_finds_by_phone_ending_name_either_way_or_card(staff, dan_case, q):
    dan, _ = dan_case
    response = logged_in(staff).get(reverse("pos-lookup"), {"q": q})
    assert f'data-customer="{dan.pk}"' in response.content.decode()


def test_several_matches_are_listed_with_their_phone_endings(staff, org, dan_case):
    twin = CustomerFactory.create(organization=org, name="Dana Reyes")
    IdentifierFactory(customer=twin, kind="phone", value="+447400110555")
    body = logged_in(staff).get(reverse("pos-lookup"), {"q": "0555"}).content.decode()
    assert "Daniel Reyes" in body and "Dana Reyes" in body
    assert body.count("ends 0555") == 2


def test_the_search_box_is_at_the_top_of_the_till(staff, dan_case):
    body = logged_in(staff).get(reverse("pos")).content.decode()
    assert body.index('role="search"') < body.index('id="panel"')
    assert re.search(r'<label[^>]+for="pos-q"', body)
    # The till has its own base template: the favicon is there too (issue 11).
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in body


# --- log out and switch location on the till ---------------------------------------------------


def test_the_till_has_its_own_log_out_that_comes_back_to_the_till(staff, dan_case):
    body = logged_in(staff).get(reverse("pos")).content.decode()
    form = re.search(rf'<form[^>]+action="{reverse("logout")}".*?</form>', body, re.S)
    assert form and 'name="next"' in form[0] and "next=/pos/" in form[0]
    assert "Switch location" not in body  # one location: nothing to switch to


def test_the_owner_switches_location_on_the_till(owner, dan_case, main_st, harbour):
    client = logged_in(owner)
    picker = client.get(reverse("pos")).content.decode()
    assert "Where are you working?" in picker
    client.post(reverse("pos-location"), {"location": "main-st"})
    till = client.get(reverse("pos")).content.decode()
    assert "Main St" in till and f'href="{reverse("pos-location")}"' in till
    again = client.get(reverse("pos-location")).content.decode()
    assert "Harbour Rd" in again and 'aria-current="true"' in again
    client.post(reverse("pos-location"), {"location": "harbour-rd"})
    assert "Harbour Rd" in client.get(reverse("pos")).content.decode()


def test_staff_cannot_switch_to_a_location_they_do_not_work_at(staff, dan_case):
    response = logged_in(staff).post(reverse("pos-location"), {"location": "harbour-rd"})
    assert response.status_code == 404
