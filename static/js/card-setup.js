// Collects a card with Stripe Elements and confirms the page's SetupIntent before the form is
// submitted; the server then re-reads the SetupIntent from Stripe. Card numbers never reach us.
(function () {
  "use strict";
  var page = window.presaleStripeForm("form[data-card-setup]", "card-errors", "The secure card form could not load.");
  if (!page) { return; }
  var form = page.form, errorBox = page.errorBox, button = page.button;
  var buttonText = page.buttonText, showError = page.showError, stripe = page.stripe;
  var card = stripe.elements().create("card", { hidePostalCode: false });
  card.mount("#card-element");
  card.on("change", function (event) {
    errorBox.textContent = event && event.error ? event.error.message : "";
  });

  var confirmed = false;
  form.addEventListener("submit", function (event) {
    if (confirmed) { return; }
    event.preventDefault();
    errorBox.textContent = "";
    button.disabled = true;
    button.textContent = "Checking your card…";
    stripe.confirmCardSetup(form.dataset.clientSecret, {
      payment_method: {
        card: card,
        billing_details: { name: form.dataset.memberName, email: form.dataset.memberEmail }
      }
    }).then(function (result) {
      if (result.error) {
        button.disabled = false;
        button.textContent = buttonText;
        // A bank's refusal is told in our words (as on the server: payments/gateway/client.py);
        // Stripe's own message is kept for what the member typed into its card field.
        // (localstripe types a decline "invalid_request_error"; its code says card_declined.)
        var refused = result.error.type === "card_error" || result.error.code === "card_declined";
        var message = refused
          ? "Your bank did not accept this card. Please try another card."
          : (result.error.message || "Your card could not be saved.");
        showError(message);
        return;
      }
      form.querySelector("input[name=setup_intent_id]").value = result.setupIntent.id;
      confirmed = true;
      button.textContent = "Saving your pre-order…";
      form.submit();
    });
  });
})();
