// Shared tills (templates/accounts/till_switch.html, devices.html). Loaded with the page's
// CSP nonce; no inline handlers. Everything works without it: it only saves taps.
(function () {
  "use strict";
  // Tapping a name tile moves to the PIN field, so the numeric keypad comes straight up.
  document.querySelectorAll(".till-tile input[type=radio]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      var pin = document.getElementById("till-pin");
      if (pin) { pin.value = ""; pin.focus(); }
    });
  });
  // The pairing link's "Copy link" button.
  document.querySelectorAll("button.js-copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy"));
      if (!field) { return; }
      field.select();
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {});
      } else if (document.execCommand && document.execCommand("copy")) {
        done();
      }
    });
  });
})();
