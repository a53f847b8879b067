import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from recovery.models import Playbook
from recovery.services import create_default_playbooks


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_managers_see_the_playbooks_in_matching_order(manager, org):
    create_default_playbooks(organization=org)
    body = logged_in(manager).get(reverse("playbooks")).content.decode()
    assert body.index("Partner let them down") < body.index("Order mix-up")
    assert "Comp their usual {usual_order}" in body


def test_staff_and_outsiders_do_not_see_playbooks(staff, outsider, org):
    create_default_playbooks(organization=org)
    assert logged_in(staff).get(reverse("playbooks")).status_code == 403
    mine = Playbook.objects.for_org(org).first()
    assert mine is not None
    assert logged_in(outsider).get(reverse("playbook-edit", args=[mine.pk])).status_code == 404


def test_a_manager_creates_edits_and_reorders_a_playbook(manager, org):
    create_default_playbooks(organization=org)
    client = logged_in(manager)
    form = {
        "name": "Card machine down",
        "case_kind": "recovery",
        "is_active": "on",
        "match_touchpoints": ["payment"],
        "match_max_experience": "",
        "ack_sla_0": "2",
        "ack_sla_1": "hours",
        "resolve_sla_0": "1",
        "resolve_sla_1": "days",
        "escalate_to": "manager",
        "show_at_visit": "on",
        "actions_text": "Apologise to {first_name}\n\nOffer a coffee on us\n",
    }
    assert client.post(reverse("playbook-new"), form).status_code == 302
    playbook = Playbook.objects.get(name="Card machine down")
    assert playbook.actions == ["Apologise to {first_name}", "Offer a coffee on us"]
    assert playbook.match_touchpoints == ["payment"] and playbook.position == 8

    client.post(reverse("playbook-edit", args=[playbook.pk]), form | {"name": "Card reader"})
    playbook.refresh_from_db()
    assert playbook.name == "Card reader"
    client.post(reverse("playbook-move", args=[playbook.pk, "up"]))
    playbook.refresh_from_db()
    assert playbook.position == 7


def test_a_bad_playbook_form_is_refused_and_changes_nothing(manager, org):
    client = logged_in(manager)
    response = client.post(
        reverse("playbook-new"),
        {"name": "x", "case_kind": "recovery", "ack_sla_0": "-1", "ack_sla_1": "days",
         "resolve_sla_0": "1", "resolve_sla_1": "days", "escalate_to": "manager",
         "actions_text": ""},
    )  # fmt: skip
    assert response.status_code == 400
    assert not Playbook.objects.filter(name="x").exists()


# --- the playbook editor -----------------------------------------------------------------------

FORM = {
    "name": "Card machine down",
    "case_kind": "recovery",
    "is_active": "on",
    "match_touchpoints": ["payment"],
    "match_max_experience": "",
    "ack_sla_0": "90",
    "ack_sla_1": "hours",
    "resolve_sla_0": "3",
    "resolve_sla_1": "days",
    "escalate_to": "manager",
    "actions_text": "Apologise to {first_name}",
}


def test_every_tick_box_sits_beside_its_label(manager, org):
    body = logged_in(manager).get(reverse("playbook-new")).content.decode()
    boxes = re.findall(r'<input type="checkbox"[^>]*id="([^"]+)"', body)
    assert len(boxes) >= 12 + 10 + 3 + 3  # touchpoints, kinds, standings, the three yes/no
    for box in boxes:
        label = re.search(
            rf'<label class="check" for="{box}"><input type="checkbox"[^>]*id="{box}"[^>]*> '
            r"<span>([^<]+)</span></label>",
            body,
        )
        assert label, box
    assert "<span>Parking / valet</span>" in body and "<span>Active</span>" in body


def test_slas_are_entered_and_shown_in_hours_or_days(manager, org):
    create_default_playbooks(organization=org)
    client = logged_in(manager)
    playbook = Playbook.objects.for_org(org).get(name="Long wait")
    body = client.get(reverse("playbook-edit", args=[playbook.pk])).content.decode()
    ack = body.split("<legend>Acknowledge within</legend>")[1].split("</fieldset>")[0]
    assert re.search(r'name="ack_sla_0" value="4"', ack)
    assert re.search(r'<option value="hours" selected>', ack)
    resolve = body.split("<legend>Resolve within</legend>")[1].split("</fieldset>")[0]
    assert re.search(r'name="resolve_sla_0" value="2"', resolve)
    assert re.search(r'<option value="days" selected>', resolve)

    assert client.post(reverse("playbook-new"), FORM | {"ack_sla_0": "1.5"}).status_code == 302
    created = Playbook.objects.get(name="Card machine down")
    assert (created.ack_sla, created.resolve_sla) == (timedelta(hours=1.5), timedelta(days=3))
    listed = client.get(reverse("playbooks")).content.decode()
    assert "acknowledge within 1.5 hours, resolve within 3 days" in listed
    assert "acknowledge within 4 hours, resolve within 2 days" in listed  # the defaults
    assert "Payment" in listed  # touchpoints by their labels
    again = client.get(reverse("playbook-edit", args=[created.pk])).content.decode()
    assert 'name="ack_sla_0" value="1.5"' in again


@pytest.mark.parametrize(
    ("number", "unit", "says"),
    [
        ("", "hours", "Enter how many hours or days, e.g. 4 hours."),
        ("soon", "hours", "Enter a number, e.g. 4 or 1.5."),
        ("0", "hours", "Must be more than zero."),
        ("-2", "days", "Must be more than zero."),
        ("400", "days", "Must be more than zero and at most 365 days."),
        ("4", "weeks", "Select a valid choice."),
    ],
)
def test_a_bad_sla_is_refused_with_a_clear_error_on_its_field(manager, org, number, unit, says):
    response = logged_in(manager).post(
        reverse("playbook-new"), FORM | {"ack_sla_0": number, "ack_sla_1": unit}
    )
    assert response.status_code == 400
    body = response.content.decode()
    error = body.split('id="id_ack_sla_error">')[1].split("</p>")[0]
    assert says in error
    fieldset = body.split("<legend>Acknowledge within</legend>")[0].rsplit("<fieldset", 1)[1]
    assert 'aria-describedby="id_ack_sla_error"' in fieldset
    assert not Playbook.objects.filter(name="Card machine down").exists()
