// Behaviour the pages used to write inline (onchange=, hx-on:), moved here so that the
// Content-Security-Policy can forbid inline handlers and eval. Delegated from the document, so
// it also works for the fragments htmx swaps in.
"use strict";

document.documentElement.classList.add("js");

// <select data-autosubmit>: submit its form as soon as a value is chosen.
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) {
    field.form.requestSubmit();
  }
});

// The quote / finance dialog (<dialog data-modal>, lending/_quote.html) arrives closed from
// htmx and is opened here as a modal: focus moves into it, the page behind it is inert, Tab
// and Shift+Tab go round its own controls, Escape closes it. Closing it (Escape, "Close",
// "Cancel") removes it and gives the focus back to the button that opened it. Without
// JavaScript the same dialog is a page of its own, rendered open.
const FOCUSABLE = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), " +
  "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

function focusables(dialog) {
  return Array.from(dialog.querySelectorAll(FOCUSABLE)).filter((el) => el.getClientRects().length);
}

function openModals(root) {
  const dialogs = root.matches?.("dialog[data-modal]") ? [root] : root.querySelectorAll?.("dialog[data-modal]") || [];
  for (const dialog of dialogs) {
    if (dialog.open || !dialog.isConnected) {
      continue;
    }
    dialog.scfOpener = document.activeElement;
    dialog.showModal();
    const body = dialog.querySelector("[tabindex='-1']") || focusables(dialog)[0];
    if (body) {
      body.focus();
    }
  }
}

document.addEventListener("htmx:load", (event) => {
  const element = event.detail.elt;
  openModals(element);
  // The finance outcome replaces the quote inside the open dialog: focus follows it.
  if (element.id === "finance-body" && element.closest("dialog[open]")) {
    element.focus();
  }
});

document.addEventListener("close", (event) => {
  const dialog = event.target;
  if (!(dialog instanceof HTMLDialogElement) || !dialog.hasAttribute("data-modal")) {
    return;
  }
  const opener = dialog.scfOpener;
  dialog.remove();
  if (opener instanceof HTMLElement && opener.isConnected) {
    opener.focus();
  }
}, true);  // "close" does not bubble

document.addEventListener("keydown", (event) => {
  if (event.key !== "Tab") {
    return;
  }
  const dialog = document.querySelector("dialog[data-modal][open]");
  if (!dialog) {
    return;
  }
  const items = focusables(dialog);
  if (items.length === 0) {
    event.preventDefault();
    return;
  }
  const first = items[0];
  const last = items[items.length - 1];
  const inside = dialog.contains(document.activeElement);
  if (event.shiftKey && (!inside || document.activeElement === first || document.activeElement === dialog.querySelector("[tabindex='-1']"))) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && (!inside || document.activeElement === last)) {
    event.preventDefault();
    first.focus();
  }
});

// <a data-close-dialog="id">: close the dialog it is in (or empty that element: no modal).
document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("[data-close-dialog]") : null;
  if (!link) {
    return;
  }
  event.preventDefault();
  const modal = link.closest("dialog[data-modal][open]");
  if (modal) {
    modal.close();
    return;
  }
  const dialog = document.getElementById(link.getAttribute("data-close-dialog"));
  if (dialog) {
    dialog.innerHTML = "";
  }
});
