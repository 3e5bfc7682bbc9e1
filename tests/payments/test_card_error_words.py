"""A card refused outside the charge run (saving it, confirming with the bank) reaches the member
in our words: Stripe's message and code stay out of what they read."""

import stripe

from payments.gateway.client import CARD_REFUSED, CardDeclined, translate_error


def test_a_card_error_gives_the_member_our_sentence_and_keeps_the_code_for_staff():
    error = stripe.CardError(
        "Your card was declined. This transaction requires authentication.",
        None,
        "card_declined",
        http_status=402,
        json_body={"error": {"code": "card_declined", "decline_code": "do_not_honor"}},
    )
    translated = translate_error(error)
    assert isinstance(translated, CardDeclined)
    assert translated.user_message == CARD_REFUSED
    assert "declined" not in translated.user_message and "card_declined" not in str(translated)
    assert translated.code == "card_declined"
