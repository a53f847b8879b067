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
        "ack_sla": "02:00:00",
        "resolve_sla": "1 00:00:00",
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
        {"name": "x", "case_kind": "recovery", "ack_sla": "-1 00:00:00",
         "resolve_sla": "1 00:00:00", "escalate_to": "manager", "actions_text": ""},
    )  # fmt: skip
    assert response.status_code == 400
    assert not Playbook.objects.filter(name="x").exists()
