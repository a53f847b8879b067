import pytest

from cxcore.models import Customer
from cxcore.selectors import SEARCH_LIMIT, customer_id_for, search_box
from tests.factories import CustomerFactory, IdentifierFactory


def test_identifying_an_unknown_customer_finds_nobody_and_writes_nothing(org):
    assert customer_id_for(organization=org, identifiers={"phone": "07400 999999"}) is None
    assert Customer.objects.count() == 0


# --- the search box ---------------------------------------------------------------------------


@pytest.fixture
def regulars(org, other_org):
    dan = CustomerFactory(organization=org, name="Daniel Reyes")
    IdentifierFactory(customer=dan, kind="phone", value="+447400900555")
    IdentifierFactory(customer=dan, kind="email", value="dan.reyes@example.com")
    IdentifierFactory(customer=dan, kind="card", value="LOYAL-7")
    dana = CustomerFactory(organization=org, name="Dana Reyes")
    IdentifierFactory(customer=dana, kind="phone", value="+447400111555")
    priya = CustomerFactory(organization=org, name="Priya Shah")
    IdentifierFactory(customer=priya, kind="phone", value="+447400222333")
    # Another organization's customer, with the same phone ending and surname: never found.
    rival = CustomerFactory(organization=other_org, name="Daniel Reyes")
    IdentifierFactory(customer=rival, kind="phone", value="+14155550555")
    return {"dan": dan, "dana": dana, "priya": priya, "rival": rival}


def found(org, text) -> set[str]:
    customers = list(search_box(organization=org, text=text))
    assert all(c.organization_id == org.pk for c in customers)
    return {c.name for c in customers}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("0555", {"Daniel Reyes"}),
        ("900555", {"Daniel Reyes"}),
        ("555", set()),  # too few digits to go on
        ("1555", {"Dana Reyes"}),
        ("07400 900555", {"Daniel Reyes"}),
        ("Reyes Daniel", {"Daniel Reyes"}),
        ("Daniel Reyes", {"Daniel Reyes"}),
        ("reyes, dan", {"Daniel Reyes", "Dana Reyes"}),
        ("Reyes", {"Daniel Reyes", "Dana Reyes"}),
        ("LOYAL-7", {"Daniel Reyes"}),
        ("DAN.Reyes@EXAMPLE.com", {"Daniel Reyes"}),
        ("Shah Priya", {"Priya Shah"}),
    ],
)
def test_the_search_box_finds_by_phone_ending_name_in_any_order_card_or_email(
    org, regulars, text, names
):
    assert found(org, text) == names


def test_a_phone_ending_finds_every_customer_of_the_organization_whose_number_ends_so(
    org, regulars
):
    dana = regulars["dana"]
    IdentifierFactory(customer=dana, kind="phone", value="+447400870555")  # a second phone
    assert found(org, "0555") == {"Daniel Reyes", "Dana Reyes"}
    assert found(org, "00555") == {"Daniel Reyes"}
    # the rival's number ends in 0555 too, and is never found from here
    assert regulars["rival"] not in list(search_box(organization=org, text="50555"))


def test_a_phone_ending_search_is_bounded(org):
    for n in range(SEARCH_LIMIT + 5):
        customer = CustomerFactory(organization=org, name=f"Customer {n}")
        IdentifierFactory(customer=customer, kind="phone", value=f"+4474009{n:02d}4321")
    assert len(list(search_box(organization=org, text="4321"))) == SEARCH_LIMIT


def test_the_search_box_costs_a_fixed_number_of_queries(
    org, regulars, django_assert_max_num_queries
):
    for text in ("0555", "Reyes Daniel", "LOYAL-7", "07400 900555"):
        with django_assert_max_num_queries(4):
            list(search_box(organization=org, text=text))
