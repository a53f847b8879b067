// Settings pages: a button with data-confirm asks before its form is sent (archiving a
// location). Loaded with the page's CSP nonce; no inline handlers.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset ? button.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
