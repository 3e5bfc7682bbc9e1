// Collects a card with Stripe Elements and confirms the page's SetupIntent before the form is
// submitted; the server then re-reads the SetupIntent from Stripe. Card numbers never reach us.
(function () {
  "use strict";
  var form = document.querySelector("form[data-card-setup]");
  if (!form) { return; }
  var errorBox = document.getElementById("card-errors");
  var button = form.querySelector("button[type=submit]");
  var buttonText = button.textContent;

  function showError(message) {
    errorBox.textContent = message;
    errorBox.focus();
  }

  if (typeof window.Stripe !== "function") {
    showError("The secure card form could not load. Please check your connection and reload the page.");
    button.disabled = true;
    return;
  }
  var stripe = window.Stripe(form.dataset.publishableKey);
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
