from cxcore.models import Customer
from cxcore.selectors import customer_id_for


def test_identifying_an_unknown_customer_finds_nobody_and_writes_nothing(org):
    assert customer_id_for(organization=org, identifiers={"phone": "07400 999999"}) is None
    assert Customer.objects.count() == 0
