// Confirms a PaymentIntent the bank wants the member present for (3-D Secure), with the card
// saved on the pre-order; then tells the server, which asks Stripe what happened.
(function () {
  "use strict";
  var page = window.presaleStripeForm("form[data-confirm-payment]", "payment-errors", "The secure payment check could not load.");
  if (!page) { return; }
  var form = page.form, errorBox = page.errorBox, button = page.button, stripe = page.stripe;
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
