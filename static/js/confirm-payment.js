// Confirms a PaymentIntent the bank wants the member present for (3-D Secure), with the card
// saved on the pre-order; then tells the server, which asks Stripe what happened.
(function () {
  "use strict";
  var form = document.querySelector("form[data-confirm-payment]");
  if (!form) { return; }
  var errorBox = document.getElementById("payment-errors");
  var button = form.querySelector("button[type=submit]");
  var buttonText = button.textContent;

  function showError(message) {
    errorBox.textContent = message;
    errorBox.focus();
  }

  if (typeof window.Stripe !== "function") {
    showError("The secure payment check could not load. Please check your connection and reload the page.");
    button.disabled = true;
    return;
  }
  var stripe = window.Stripe(form.dataset.publishableKey);
  var done = false;
  form.addEventListener("submit", function (event) {
    if (done) { return; }
    event.preventDefault();
    errorBox.textContent = "";
    button.disabled = true;
    button.textContent = "Waiting for your bank…";
    stripe.confirmCardPayment(form.dataset.clientSecret, {
      payment_method: form.dataset.paymentMethod
    }).then(function () {
      // Success or not, the server asks Stripe and shows the member where things stand.
      done = true;
      button.textContent = "Checking with your bank…";
      form.submit();
    });
  });
})();
