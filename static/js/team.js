// Team pages: ask before revoking an invitation or deactivating a member. Loaded with the
// page's nonce; no inline handlers (the CSP refuses them).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (!window.confirm(form.dataset.confirm)) event.preventDefault();
});
