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
        var message = result.error.message || "Your card could not be saved.";
        if (result.error.code === "card_declined") { message += " Please try another card."; }
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
