"""Why a payment failed, in the member's words. Stripe's codes (and its messages, written for
developers) stay with staff; a member reads one short plain sentence per kind of failure."""

from enum import StrEnum


class FailureKind(StrEnum):
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    INCORRECT_DETAILS = "incorrect_details"
    AUTHENTICATION_REQUIRED = "authentication_required"
    AUTHENTICATION_NOT_CONFIRMED = "authentication_not_confirmed"
    PROCESSING_ERROR = "processing_error"
    OTHER = "other"


SENTENCES: dict[FailureKind, str] = {
    FailureKind.DECLINED: "Your bank declined the payment.",
    FailureKind.INSUFFICIENT_FUNDS: "Your card did not have enough funds for the payment.",
    FailureKind.EXPIRED_CARD: "Your card has expired.",
    FailureKind.INCORRECT_DETAILS: (
        "Your bank did not accept the card details we have, such as the number, expiry date "
        "or security code."
    ),
    FailureKind.AUTHENTICATION_REQUIRED: (
        "Your bank wanted you to confirm the payment yourself, which is not possible when we "
        "charge your card automatically."
    ),
    FailureKind.AUTHENTICATION_NOT_CONFIRMED: (
        "The payment was not confirmed with your bank in time, so we cancelled it."
    ),
    FailureKind.PROCESSING_ERROR: "Your bank could not process the payment at the time.",
    FailureKind.OTHER: "The payment did not go through.",
}

# Stripe's error codes and decline codes (https://docs.stripe.com/declines/codes), by kind.
_KINDS: dict[FailureKind, frozenset[str]] = {
    FailureKind.DECLINED: frozenset(
        {
            "card_declined",
            "generic_decline",
            "do_not_honor",
            "do_not_try_again",
            "call_issuer",
            "card_not_supported",
            "card_velocity_exceeded",
            "currency_not_supported",
            "fraudulent",
            "lost_card",
            "stolen_card",
            "pickup_card",
            "restricted_card",
            "merchant_blacklist",
            "new_account_information_available",
            "no_action_taken",
            "not_permitted",
            "revocation_of_all_authorizations",
            "revocation_of_authorization",
            "security_violation",
            "service_not_allowed",
            "stop_payment_order",
            "transaction_not_allowed",
            "try_again_later",
            "withdrawal_count_limit_exceeded",
            "approve_with_id",
            "issuer_not_available",
            "reenter_transaction",
            "testmode_decline",
        }
    ),
    FailureKind.INSUFFICIENT_FUNDS: frozenset({"insufficient_funds"}),
    FailureKind.EXPIRED_CARD: frozenset({"expired_card"}),
    FailureKind.INCORRECT_DETAILS: frozenset(
        {
            "incorrect_number",
            "invalid_number",
            "incorrect_cvc",
            "invalid_cvc",
            "incorrect_zip",
            "incorrect_address",
            "invalid_expiry_month",
            "invalid_expiry_year",
            "invalid_account",
            "invalid_pin",
            "incorrect_pin",
            "offline_pin_required",
            "online_or_offline_pin_required",
            "pin_try_exceeded",
        }
    ),
    FailureKind.AUTHENTICATION_REQUIRED: frozenset(
        {"authentication_required", "requires_action", "card_not_authenticated"}
    ),
    # Our own code: the member did not confirm by the deadline (payments/authentication.py).
    FailureKind.AUTHENTICATION_NOT_CONFIRMED: frozenset({"authentication_deadline"}),
    FailureKind.PROCESSING_ERROR: frozenset({"processing_error", "duplicate_transaction"}),
}
_KIND_OF_CODE = {code: kind for kind, codes in _KINDS.items() for code in codes}


def kind_of(code: str) -> FailureKind:
    return _KIND_OF_CODE.get((code or "").strip().lower(), FailureKind.OTHER)


def member_sentence(code: str) -> str:
    """The plain sentence for a Stripe failure code; anything unknown gets the general one."""
    return SENTENCES[kind_of(code)]


# The kinds where the bank refused the card: the brief's "Card declined" is true of these. A
# processing error, an unknown failure or a confirmation that never came is not a decline.
_NOT_DECLINES = frozenset(
    {FailureKind.PROCESSING_ERROR, FailureKind.OTHER, FailureKind.AUTHENTICATION_NOT_CONFIRMED}
)


def member_headline(code: str) -> str:
    """The failure in two or three words, for the dashboard's notice and the email's subject."""
    kind = kind_of(code)
    if kind == FailureKind.AUTHENTICATION_NOT_CONFIRMED:
        return "Not confirmed in time"
    return "Payment not taken" if kind in _NOT_DECLINES else "Card declined"


# The status badge, in the brief's style (Failed, a dash, the headline in capitals), by headline.
BADGES = {
    "Card declined": "Failed – Card Declined",
    "Payment not taken": "Failed – Payment Not Taken",
    "Not confirmed in time": "Failed – Not Confirmed in Time",
}


def member_badge(code: str) -> str:
    return BADGES[member_headline(code)]
