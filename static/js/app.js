"use strict";
// Behaviour the pages once wrote inline (onchange=…), which the Content-Security-Policy
// refuses: wired here by data attributes instead.

// <input data-autosubmit>: a change submits its form at once (the queue's digest checkbox).
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLElement && field.hasAttribute("data-autosubmit") && field.form) {
    field.form.submit();
  }
});
