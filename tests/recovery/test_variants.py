"""Action experiments in playbooks (issue 16): each case a playbook with two or more active
variants opens draws one, recorded and replayable, and is offered that variant's actions;
owners and managers end the experiment by keeping one."""

from collections import Counter
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.errors import ConflictError, InvalidInput
from recovery import lifecycle
from recovery.experiments import end_experiment, save_variant
from recovery.models import CaseKind, Playbook, PlaybookVariant, RecoveryCase
from recovery.sweep import running_experiments, sweep_care, sweep_recovery
from tests.factories import CustomerFactory
from tests.recovery.conftest import T0, log
from tests.recovery.test_holdouts import LAPSED, binomial_bounds, lapsing_regulars, set_share

APOLOGY = ["Welcome {first_name} back by name"]
COMP = ["Welcome {first_name} back by name", "Offer {usual_order} on us"]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def care_playbook(org, playbooks) -> Playbook:
    set_share(org, 0)
    return Playbook.objects.get(organization=org, case_kind=CaseKind.CARE)


def add(playbook: Playbook, name: str, actions: list[str], active: bool = True):
    return save_variant(
        playbook=playbook,
        variant_id=None,
        name=name,
        actions=actions,
        is_active=active,
        now=T0,
    )


def test_an_experiment_runs_with_two_active_variants_and_not_after_it_ended(care_playbook):
    assert running_experiments([care_playbook.pk]) == {}
    first = add(care_playbook, "Apology", APOLOGY)
    assert running_experiments([care_playbook.pk]) == {}  # one variant is no experiment
    add(care_playbook, "Paused", COMP, active=False)
    assert running_experiments([care_playbook.pk]) == {}  # an inactive one does not count
    second = add(care_playbook, "Apology and comp", COMP)
    assert running_experiments([care_playbook.pk]) == {
        care_playbook.pk: {first.pk: APOLOGY, second.pk: COMP}
    }
    end_experiment(playbook=care_playbook, kept_variant_id=second.pk, now=T0)
    assert running_experiments([care_playbook.pk]) == {}


def test_each_case_draws_a_variant_and_gets_its_actions(org, care_playbook):
    apology = add(care_playbook, "Apology", APOLOGY)
    comp = add(care_playbook, "Apology and comp", COMP)
    n = 300
    lapsing_regulars(org, n)
    assert sweep_care(now=LAPSED).opened == n
    cases = list(RecoveryCase.objects.prefetch_related("actions").select_related("customer"))
    drawn = Counter(case.variant_id for case in cases)
    assert set(drawn) == {apology.pk, comp.pk}
    low, high = binomial_bounds(n, 0.5)
    assert low <= drawn[apology.pk] <= high
    for case in cases:
        first_name = case.customer.name.split()[0]
        texts = [a.text for a in case.actions.all()]
        expected = APOLOGY if case.variant_id == apology.pk else COMP
        assert len(texts) == len(expected)
        assert texts[0] == f"Welcome {first_name} back by name"
        # Replayed from the recorded seed, with the variants in their draw order.
        assert case.draw_seed is not None
        replay = lifecycle.draw(
            case.draw_seed, kind=case.kind, holdout_share=0, variant_ids=[apology.pk, comp.pk]
        )
        assert replay.variant_id == case.variant_id
        assert case.events.get(type="opened").data == {"variant": case.variant_id}


def test_without_an_experiment_cases_get_the_playbooks_actions_and_no_variant(org, care_playbook):
    add(care_playbook, "Only one", COMP)
    lapsing_regulars(org, 5)
    sweep_care(now=LAPSED)
    for case in RecoveryCase.objects.all():
        assert case.variant_id is None
        assert next(a.text for a in case.actions.all()).startswith("Welcome ")
        assert case.actions.count() == len(care_playbook.actions)


def test_ending_the_experiment_keeps_one_variant_for_the_cases_after(org, care_playbook):
    add(care_playbook, "Apology", APOLOGY)
    comp = add(care_playbook, "Apology and comp", COMP)
    lapsing_regulars(org, 10)
    sweep_care(now=LAPSED)
    before = {c.pk: c.variant_id for c in RecoveryCase.objects.all()}
    end_experiment(playbook=care_playbook, kept_variant_id=comp.pk, now=LAPSED)
    care_playbook.refresh_from_db()
    assert care_playbook.actions == COMP
    assert care_playbook.kept_variant == comp and care_playbook.experiment_ended_at == LAPSED
    assert not PlaybookVariant.objects.filter(playbook=care_playbook, is_active=True).exists()
    # The cases drawn so far keep their variant: they are the evidence.
    assert {c.pk: c.variant_id for c in RecoveryCase.objects.all()} == before
    later = lapsing_regulars(org, 3)
    sweep_care(now=LAPSED + timedelta(days=1))
    for case in RecoveryCase.objects.filter(customer__in=later):
        assert case.variant_id is None and case.actions.count() == 2


def test_ending_needs_a_running_experiment_and_one_of_its_variants(care_playbook, other_org):
    first = add(care_playbook, "Apology", APOLOGY)
    with pytest.raises(ConflictError) as no_experiment:
        end_experiment(playbook=care_playbook, kept_variant_id=first.pk, now=T0)
    assert no_experiment.value.field == "kept_variant"
    add(care_playbook, "Apology and comp", COMP)
    paused = add(care_playbook, "Paused", COMP, active=False)
    with pytest.raises(InvalidInput) as not_in_it:
        end_experiment(playbook=care_playbook, kept_variant_id=paused.pk, now=T0)
    assert not_in_it.value.field == "kept_variant"


def test_a_reopened_case_is_offered_its_variants_actions_again(org, main_st, playbooks):
    set_share(org, 0)
    wait = Playbook.objects.get(organization=org, name="Long wait")
    variants = [
        add(wait, "Apology", ["Apologise to {first_name} for the wait"]),
        add(wait, "Apology and a drink", ["Apologise to {first_name}", "Offer a drink on us"]),
    ]
    texts = {v.pk: v.actions for v in variants}
    guest = CustomerFactory(organization=org, name="Ada Lovelace")
    wait_tp = [{"code": "wait", "third_party": False}]
    log(org, guest, T0, kind="complaint", experience=-1, touchpoints=wait_tp, location=main_st)
    sweep_recovery(now=T0 + timedelta(hours=3))
    case = RecoveryCase.objects.get()
    assert case.playbook == wait and case.variant_id in texts
    log(org, guest, T0 + timedelta(hours=4), kind="recovery", summary="Sorry")
    sweep_recovery(now=T0 + timedelta(hours=5))
    log(org, guest, T0 + timedelta(days=2), kind="complaint", experience=-1, touchpoints=wait_tp)
    assert sweep_recovery(now=T0 + timedelta(days=2, minutes=1)).reopened == 1
    case.refresh_from_db()
    suggested = [a.text for a in case.actions.order_by("position")]
    n = len(texts[case.variant_id])
    rendered = [t.replace("{first_name}", "Ada") for t in texts[case.variant_id]]
    assert suggested[-n:] == rendered and suggested[:n] == rendered


# --- the playbook page ------------------------------------------------------------------------


def test_a_manager_adds_variants_and_ends_the_experiment_on_the_playbook_page(
    manager, care_playbook
):
    client = logged_in(manager)
    url = reverse("playbook-edit", args=[care_playbook.pk])
    for name, actions in (("Apology", APOLOGY), ("Apology and comp", COMP)):
        response = client.post(
            url,
            {"op": "variant", "new-name": name, "new-actions_text": "\n".join(actions),
             "new-is_active": "on"},
        )  # fmt: skip
        assert response.status_code == 302, response.content.decode()[:1000]
    apology, comp = PlaybookVariant.objects.filter(playbook=care_playbook)
    assert (apology.name, apology.actions, comp.actions) == ("Apology", APOLOGY, COMP)
    page = client.get(url).content.decode()
    assert "Running" in page and "End the experiment and keep this variant" in page
    # Edit one in place: its own prefix.
    response = client.post(
        url,
        {"op": "variant", "variant": str(apology.pk), f"v{apology.pk}-name": "Sorry",
         f"v{apology.pk}-actions_text": "Say sorry to {first_name}",
         f"v{apology.pk}-is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    apology.refresh_from_db()
    assert (apology.name, apology.actions) == ("Sorry", ["Say sorry to {first_name}"])
    response = client.post(url, {"op": "end_experiment", "kept_variant": str(comp.pk)})
    assert response.status_code == 302
    care_playbook.refresh_from_db()
    assert care_playbook.kept_variant == comp and care_playbook.actions == COMP
    assert "keeping" in client.get(url).content.decode()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"op": "variant", "new-name": "", "new-actions_text": "Hi"}, "new-name", "required"),
        ({"op": "variant", "new-name": "X" * 101, "new-actions_text": "Hi"}, "new-name", "100"),
        ({"op": "variant", "new-name": "A", "new-actions_text": ""},
         "new-actions_text", "required"),
        ({"op": "variant", "new-name": "A", "new-actions_text": "Hi {nope}"},
         "new-actions_text", "Unknown placeholder"),
        ({"op": "variant", "new-name": "A", "new-actions_text": "\n".join(["a"] * 11)},
         "new-actions_text", "Up to 10"),
        ({"op": "variant", "variant": "abc", "new-name": "A", "new-actions_text": "Hi"},
         None, "variant: not a variant of this playbook"),
        ({"op": "end_experiment", "kept_variant": "999999"}, "id_kept_variant", "valid choice"),
        ({"op": "end_experiment", "kept_variant": "x"}, "id_kept_variant", "valid choice"),
        ({"op": "launch"}, None, "op: one of save, variant, end_experiment"),
    ],
)  # fmt: skip
def test_bad_input_on_the_playbook_page_is_a_400_naming_the_field(
    manager, care_playbook, data, field, message
):
    add(care_playbook, "Apology", APOLOGY)
    add(care_playbook, "Apology and comp", COMP)
    before = list(PlaybookVariant.objects.values_list("name", "actions", "is_active"))
    url = reverse("playbook-edit", args=[care_playbook.pk])
    response = logged_in(manager).post(url, data)
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    if field is not None:
        assert f'id="id_{field}_error"' in body or f'id="{field}_error"' in body
    assert list(PlaybookVariant.objects.values_list("name", "actions", "is_active")) == before
    care_playbook.refresh_from_db()
    assert care_playbook.experiment_ended_at is None


def test_ending_an_experiment_that_is_not_running_is_a_409_naming_the_field(manager, care_playbook):
    only = add(care_playbook, "Apology", APOLOGY)
    url = reverse("playbook-edit", args=[care_playbook.pk])
    response = logged_in(manager).post(url, {"op": "end_experiment", "kept_variant": only.pk})
    assert response.status_code == 409
    body = response.content.decode()
    assert 'id="id_kept_variant_error"' in body and "no experiment running" in body
    care_playbook.refresh_from_db()
    assert care_playbook.experiment_ended_at is None and care_playbook.actions != APOLOGY


def test_staff_and_outsiders_cannot_touch_variants(staff, outsider, care_playbook):
    url = reverse("playbook-edit", args=[care_playbook.pk])
    data = {"op": "variant", "new-name": "A", "new-actions_text": "Hi"}
    assert logged_in(staff).post(url, data).status_code == 403
    assert logged_in(outsider).post(url, data).status_code == 404
    assert not PlaybookVariant.objects.exists()


def test_a_variant_of_another_playbook_is_not_found(manager, org, care_playbook):
    other = Playbook.objects.filter(organization=org).exclude(pk=care_playbook.pk).first()
    assert other is not None
    foreign = add(other, "Elsewhere", APOLOGY)
    url = reverse("playbook-edit", args=[care_playbook.pk])
    data = {"op": "variant", "variant": str(foreign.pk), f"v{foreign.pk}-name": "Mine now",
            f"v{foreign.pk}-actions_text": "Hi", f"v{foreign.pk}-is_active": "on"}  # fmt: skip
    assert logged_in(manager).post(url, data).status_code == 404
    foreign.refresh_from_db()
    assert foreign.name == "Elsewhere"


def test_variants_start_a_new_experiment_after_one_ended(care_playbook):
    a = add(care_playbook, "Apology", APOLOGY)
    add(care_playbook, "Apology and comp", COMP)
    end_experiment(playbook=care_playbook, kept_variant_id=a.pk, now=timezone.now())
    add(care_playbook, "Call them", ["Call {first_name}"])
    care_playbook.refresh_from_db()
    assert care_playbook.experiment_ended_at is None and care_playbook.kept_variant is None
    assert care_playbook.actions == APOLOGY  # the kept actions stay until the next ending
