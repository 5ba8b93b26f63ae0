// Behaviour the pages used to write inline (onchange=, hx-on:), moved here so that the
// Content-Security-Policy can forbid inline handlers and eval. Delegated from the document, so
// it also works for the fragments htmx swaps in.
"use strict";

// <select data-autosubmit>: submit its form as soon as a value is chosen.
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) {
    field.form.requestSubmit();
  }
});

// <a data-close-dialog="id">: empty that element (closes the quote / finance dialog).
document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("[data-close-dialog]") : null;
  if (!link) {
    return;
  }
  event.preventDefault();
  const dialog = document.getElementById(link.getAttribute("data-close-dialog"));
  if (dialog) {
    dialog.innerHTML = "";
  }
});
