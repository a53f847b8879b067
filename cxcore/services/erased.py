"""Writes to an erased customer are refused (cxcore.privacy.erase_customer).

An erased customer's row stays, anonymised, so counts and insights hold; nothing more may be
written about them: a new episode, a name or notes, a merge, would put personal data back on
a row the person asked to be cleared. They are no longer recognised by any identifier (the
erasure deletes them), so the next episode with the same phone, email, card or POS id starts a
new customer; only a write that names the erased customer by id reaches this check.

Callers check with the customer's row locked: erase_customer locks it too, so a write either
lands before the erasure (and is erased with the rest) or sees its Erasure row and is refused.
"""

from __future__ import annotations

from collections.abc import Collection

from accounts.errors import ConflictError
from cxcore.models import Erasure


class CustomerErased(ConflictError):
    default_code = "customer_erased"

    def __init__(self, customer_id: int, *, field: str = "customer.id") -> None:
        super().__init__(
            f"Customer #{customer_id} was erased: nothing more is recorded about them. A new "
            "episode by phone, email, card or POS id starts a new customer.",
            field=field,
        )
        self.customer_id = customer_id


def erased_among(*, organization_id: int, customer_ids: Collection[int]) -> set[int]:
    """Which of `customer_ids` were erased (one query on the erasure_org_customer index)."""
    if not customer_ids:
        return set()
    return set(
        Erasure.objects.filter(organization_id=organization_id, customer_id__in=customer_ids)
        .values_list("customer_id", flat=True)
        .distinct()
    )


def refuse_erased(
    *, organization_id: int, customer_ids: Collection[int], field: str = "customer.id"
) -> None:
    erased = erased_among(organization_id=organization_id, customer_ids=customer_ids)
    if erased:
        raise CustomerErased(min(erased), field=field)
