"""Connectors' part of the customer's data rights (cxcore.privacy): what Square sent about
the person. The episodes themselves are cxcore's to clear; here, the reasons typed in Square
and Square's customer id on the rows that link a payment or refund to them."""

from __future__ import annotations

from connectors.models import SquarePayment, SquareRefund
from cxcore.privacy import ErasureContext, register_erase_step


def erase_square_rows(context: ErasureContext) -> dict[str, int]:
    payments = SquarePayment.objects.filter(episode__customer_id=context.customer_id)
    payment_ids = list(payments.values_list("payment_id", flat=True))
    cleared = payments.exclude(square_customer_id="").update(square_customer_id="")
    # A refund is the customer's through its payment (its own episode may still be waiting).
    refunds = SquareRefund.objects.filter(
        organization_id=context.organization_id, payment_id__in=payment_ids
    ).exclude(reason="")
    return {"square_payments": cleared, "square_refunds": refunds.update(reason="")}


def register() -> None:
    """Called from ConnectorsConfig.ready()."""
    register_erase_step("connectors", erase_square_rows)
