// Caseloop pages work without this file; it only asks before irreversible buttons.
// Served from the app (no inline script: the Content-Security-Policy forbids it).
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
