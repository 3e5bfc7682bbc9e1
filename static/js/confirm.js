// A form with data-confirm="question" asks before it is sent. (An onsubmit attribute would be an
// inline script, which the Content-Security-Policy refuses.)
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
