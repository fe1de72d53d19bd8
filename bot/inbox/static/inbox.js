// PlusOne inbox: live updates over Server-Sent Events, saved replies, Ctrl+Enter to send.
// Regions marked data-live are refreshed with server-rendered (escaped) HTML: no markup is built here.
(function () {
  "use strict";
  var status = document.getElementById("live-status");
  var timers = new WeakMap();
  var latest = new WeakMap(); // per region, the number of its newest fetch

  function wanted(region, note) {
    var kinds = (region.dataset.liveKinds || "").split(" ");
    if (kinds.indexOf(note.kind) < 0) return false;
    if (note.kind === "claims") return true; // decided stock: any cart or board may have changed
    var page = region.dataset.livePage, psid = region.dataset.livePsid;
    if (page && note.page && page !== note.page) return false;
    if (psid && note.psid && psid !== note.psid) return false;
    return true;
  }

  function refresh(region) {
    if (timers.get(region)) return; // one refresh per burst of notes
    timers.set(region, setTimeout(function () {
      timers.delete(region);
      var number = (latest.get(region) || 0) + 1;
      latest.set(region, number);
      var started = Date.now();
      fetch(region.dataset.liveSrc, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          // Fetches may finish out of order on a busy server: an older answer never replaces a newer one.
          if (latest.get(region) !== number) return;
          // Nor one asked before the page itself rewrote the region (a tap's answer, data-updated-at): the
          // tap's answer is newer, and may carry a refusal the merchant has to read.
          if (Number(region.dataset.updatedAt || 0) >= started) return;
          // Never wipe what the agent is typing: a region with edited fields waits for their submit.
          if (region.dataset.dirty) return;
          if (region.contains(document.activeElement) && document.activeElement.tagName !== "BUTTON") return;
          region.innerHTML = html;
          if (region.id === "thread") region.scrollTop = region.scrollHeight;
        });
    }, Number(region.dataset.liveDelay) || 150)); // a region of heavy figures (data-live-delay) asks less often
  }

  if (status && window.EventSource) {
    var source = new EventSource("/inbox/events");
    source.addEventListener("hello", function () {
      status.textContent = status.dataset.on || "live"; status.className = "live-on";
      // Whatever changed between rendering this page and (re)connecting: refresh once.
      document.querySelectorAll("[data-live]").forEach(refresh);
    });
    source.addEventListener("change", function (e) {
      var note = JSON.parse(e.data);
      document.querySelectorAll("[data-live]").forEach(function (region) {
        if (wanted(region, note)) refresh(region);
      });
    });
    source.onerror = function () { status.textContent = status.dataset.off || "reconnecting"; status.className = "live-off"; };
  }

  document.querySelectorAll("[data-live]").forEach(function (region) {
    region.addEventListener("input", function () { region.dataset.dirty = "1"; });
    // A form shown again with its error beside it keeps what was typed and the error until it is sent again.
    if (region.querySelector(".field-error")) region.dataset.dirty = "1";
  });

  var thread = document.getElementById("thread");
  if (thread) thread.scrollTop = thread.scrollHeight;

  var saved = document.getElementById("saved");
  if (saved) {
    saved.addEventListener("change", function () {
      var box = document.getElementById(saved.dataset.insertInto);
      if (box && saved.value) { box.value = box.value ? box.value + "\n" + saved.value : saved.value; box.focus(); }
      saved.value = "";
    });
  }

  var text = document.getElementById("reply-text");
  if (text) {
    text.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); text.form.requestSubmit(); }
    });
  }

  // Add by code: only the typed product's options are shown (and sent); the others stay hidden and disabled.
  // Listened for on the document: a live update replaces the panel, and with it the form's elements.
  function showOptions(code) {
    var typed = code.value.trim().toLowerCase();
    document.querySelectorAll("#add-form .add-options").forEach(function (group) {
      var match = group.dataset.code === typed;
      group.hidden = !match; group.disabled = !match;
    });
  }
  ["input", "change"].forEach(function (type) {
    document.addEventListener(type, function (e) { if (e.target.id === "add-code") showOptions(e.target); });
  });
  var code = document.getElementById("add-code");
  if (code) showOptions(code);

  // Print-outs (pick list, packing slips): a button, as the page allows no inline script.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
