// What the card form and the bank-confirmation form share: find the form, its error box and
// button, and start Stripe.js with the page's publishable key. Returns null (after telling the
// member, with the button disabled) when Stripe.js did not load.
window.presaleStripeForm = function (selector, errorBoxId, notLoaded) {
  "use strict";
  var form = document.querySelector(selector);
  if (!form) { return null; }
  var errorBox = document.getElementById(errorBoxId);
  var button = form.querySelector("button[type=submit]");
  var page = {
    form: form,
    errorBox: errorBox,
    button: button,
    buttonText: button.textContent,
    showError: function (message) {
      errorBox.textContent = message;
      errorBox.focus();
    }
  };
  if (typeof window.Stripe !== "function") {
    page.showError(notLoaded + " Please check your connection and reload the page.");
    button.disabled = true;
    return null;
  }
  page.stripe = window.Stripe(form.dataset.publishableKey);
  return page;
};
