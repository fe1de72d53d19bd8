// The console's FAQ tester, live: as the owner types a sample message (or changes the rule), the form is
// tried (action=test, nothing saved) and the explanation beside it replaced by the server's. Without
// script the "Try it" button does the same with a page load.
"use strict";
(function () {
  const form = document.querySelector("form.console-form[action='/inbox/faq']");
  if (!form) return;
  const tester = form.querySelector("#tester");
  let timer = null;
  let asked = 0;
  async function tryIt() {
    const sample = form.querySelector("#faq-sample");
    if (!sample || !sample.value.trim()) return;
    const body = new FormData(form);  // (form.action is the buttons named "action": the attribute is the address)
    body.set("action", "test");
    const mine = ++asked;
    const response = await fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin" });
    if (mine !== asked || !response.ok) return;  // a later try is on its way, or this one failed
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.querySelector("#tester .explanation");
    const old = tester.querySelector(".explanation");
    if (fresh && old) old.replaceWith(document.importNode(fresh, true));
    else if (fresh) tester.appendChild(document.importNode(fresh, true));
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { tryIt().catch(function () {}); }, 350);
  });
})();

// The segment builder, live: as the owner changes a condition, the form is counted (action=preview,
// nothing saved) and the count and preview below it replaced by the server's. A form that is not right
// yet (a 400) leaves the last good count; "Count and preview" and "Save" name the problem.
(function () {
  const form = document.querySelector("form.segment-builder");
  if (!form) return;
  let timer = null;
  let asked = 0;
  async function count() {
    const body = new FormData(form);
    body.set("action", "preview");
    const mine = ++asked;
    const response = await fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin" });
    if (mine !== asked || !response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.querySelector("#preview");
    const old = document.querySelector("#preview");
    if (fresh && old) old.replaceWith(document.importNode(fresh, true));
    else if (fresh) form.after(document.importNode(fresh, true));
  }
  function soon() {
    clearTimeout(timer);
    timer = setTimeout(function () { count().catch(function () {}); }, 400);
  }
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
})();
