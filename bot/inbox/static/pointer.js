// The live board's "now selling" pointer: a tap or a key moves it without a page load. Keys: 1-9 the
// products in order, → / J next, ← / K previous, 0 / Esc nothing on screen. The server answers with the
// section's fresh (escaped) HTML; without script the buttons are a plain form.
(function () {
  "use strict";
  var region = document.getElementById("pointer");
  if (!region) return;
  var busy = false;

  function send(button) {
    var form = region.querySelector("form[data-pointer]");
    if (!form || !button || button.disabled || busy) return;
    var body = new FormData(form);
    body.set("code", button.value);
    busy = true;
    fetch(form.getAttribute("action"), {
      method: "POST", body: body, credentials: "same-origin", headers: { "X-Requested-With": "fetch" }
    })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        region.innerHTML = html;
        region.dataset.updatedAt = String(Date.now()); // a board refresh asked before this does not undo it
      })
      .finally(function () { busy = false; });
  }

  region.addEventListener("click", function (e) {
    var button = e.target.closest("button.point");
    if (!button) return;
    e.preventDefault();
    send(button);
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var buttons = Array.prototype.slice.call(region.querySelectorAll("button.point[data-code]"));
    var current = buttons.findIndex(function (b) { return b.classList.contains("on"); });
    var target = null;
    if (/^[1-9]$/.test(e.key)) target = buttons[Number(e.key) - 1];
    else if (e.key === "0" || e.key === "Escape") target = region.querySelector("button.point.none");
    else if (e.key === "ArrowRight" || e.key === "j" || e.key === "J") target = buttons[current < 0 ? 0 : Math.min(current + 1, buttons.length - 1)];
    else if (e.key === "ArrowLeft" || e.key === "k" || e.key === "K") target = buttons[current < 0 ? 0 : Math.max(current - 1, 0)];
    else return;
    if (!target) return;
    e.preventDefault();
    send(target);
  });
})();
