"""The Idempotency-Key Stripe sees is always the attempt's stored key: on the first try, on every
SDK retry, on the gateway's 429 retries and on a reconciliation resend. A key made up anywhere
else (a random one per call, say) would let a retry charge twice; this test would catch it."""

import datetime as dt
from collections import defaultdict

import pytest

from payments import charging, run_execution
from payments.models import ChargeAttempt
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.test_faults_stripe_proxy import CHARGES, hard_day  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


def test_every_request_for_a_charge_carries_its_attempts_stored_key(
    hard_day,  # noqa: F811
    approved_preorder_factory,
    settings,
):
    preorders = [approved_preorder_factory() for _ in range(6)]
    cycle_id = preorders[0].cycle_id
    close_window(cycle_id)

    # Stripe rate-limits (the gateway waits and retries) and then answers 500 to everything
    # (the SDK retries each charge twice, then gives up): nothing is charged.
    settings.STRIPE_MAX_NETWORK_RETRIES = 2
    settings.CHARGE_RATE_PER_SECOND = 100  # outrun the stand-in's limit on purpose
    hard_day.configure(error_500=1.0, error_500_endpoint=CHARGES, rate_limit=3)
    run_execution.run_charges(cycle_id, trigger="test", early=True)
    assert ChargeAttempt.objects.filter(status=ChargeAttempt.Status.STARTED).count() == 6

    # Stripe is back: reconciliation finds no charge for each attempt and resends it.
    hard_day.configure(error_500=0, rate_limit=0)
    charging.reconcile(cycle_id=cycle_id, older_than=dt.timedelta(0))

    assert set(PreOrder.objects.values_list("status", flat=True)) == {Status.TICKET_SENT}
    stats = hard_day.stats()
    limited = stats["rate_limited_by_endpoint"].get(CHARGES, 0)
    assert limited > 0, "no 429 met: the test proves less than it says"
    failed = stats["faults"]["error_500"]
    assert failed >= 18  # at least 3 tries each (the SDK's retries), more after 429s
    assert len(stats["charge_requests"]) == limited + failed + 6  # + one resend each
    stored = dict(ChargeAttempt.objects.values_list("preorder_id", "idempotency_key"))
    sent: dict[str, set[str]] = defaultdict(set)
    for request in stats["charge_requests"]:
        sent[request["preorder_id"]].add(request["idempotency_key"])
        assert request["idempotency_key"] == request["charge_key"]
    assert {int(pk): keys for pk, keys in sent.items()} == {pk: {key} for pk, key in stored.items()}
