// The journey editor, live: as the owner edits, the form is previewed (action=preview, nothing saved) and
// the preview below it replaced by the server's; choosing another kind of step (or trigger) also brings
// that step's fields. A form that is not right yet (a 400) shows its problem beside the step. Without
// script, "Update the preview" does the same with a page load.
"use strict";
(function () {
  const form = document.querySelector("form.journey-editor");
  if (!form) return;
  let timer = null;
  let asked = 0;
  async function preview(withSteps) {
    const body = new FormData(form);  // (form.action is the buttons named "action": the attribute is the address)
    body.set("action", "preview");
    const mine = ++asked;
    const response = await fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin" });
    if (mine !== asked || (!response.ok && response.status !== 400)) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const swap = function (selector) {
      const fresh = page.querySelector(selector);
      const old = document.querySelector(selector);
      if (fresh && old) old.replaceWith(document.importNode(fresh, true));
    };
    if (response.ok) swap("#preview");
    if (withSteps) {
      swap("#steps");
      swap("section.trigger");
    } else {
      // The problem of the form as typed, beside its field; the fields the owner is typing in stay as they are.
      document.querySelectorAll("form.journey-editor .field-error").forEach(function (node) { node.remove(); });
      document.querySelectorAll("form.journey-editor [aria-invalid]").forEach(function (node) { node.removeAttribute("aria-invalid"); });
      const problem = page.querySelector(".field-error[data-field]");
      if (problem) {
        const input = form.querySelector("[name='" + problem.dataset.field.replace(/'/g, "") + "']");
        if (input) {
          input.setAttribute("aria-invalid", "true");
          input.insertAdjacentElement("afterend", document.importNode(problem, true));
        }
      }
    }
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { preview(false).catch(function () {}); }, 400);
  });
  form.addEventListener("change", function (event) {
    const kind = event.target.matches("select.step-kind, #trigger-kind");
    clearTimeout(timer);
    timer = setTimeout(function () { preview(kind).catch(function () {}); }, kind ? 0 : 400);
  });
})();
