/* Questionnaire pages: save each tap at once, keep unsent taps in a local queue while offline.
   Without JavaScript the page still works: every button posts the whole page. */
(function () {
  "use strict";
  var form = document.querySelector("form.questionnaire");
  if (!form || !window.fetch) { return; }
  var state = document.getElementById("save-state");
  var QUEUE = "pro-app-answer-queue";
  var sending = false;
  var retryTimer = null;

  function load() {
    try { return JSON.parse(window.localStorage.getItem(QUEUE)) || {}; } catch (e) { return {}; }
  }
  function store(queue) {
    try { window.localStorage.setItem(QUEUE, JSON.stringify(queue)); } catch (e) { /* private mode */ }
  }
  function show(key, kind) {
    state.textContent = form.getAttribute("data-msg-" + key);
    state.className = "save-state " + kind;
  }
  function retrySoon() {
    if (!retryTimer) { retryTimer = window.setTimeout(function () { retryTimer = null; flush(); }, 4000); }
  }
  function forget(name, value) {
    var queue = load();
    if (queue[name] && queue[name].value === value) { delete queue[name]; store(queue); }
  }
  function flush() {
    var queue = load();
    var names = Object.keys(queue);
    if (sending || !names.length) { return; }
    sending = true;
    var name = names[0];
    var entry = queue[name];
    fetch(form.getAttribute("data-save-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": entry.csrf },
      body: JSON.stringify({ form_key: entry.key, name: name, value: entry.value })
    }).then(function (response) {
      sending = false;
      if (response.ok) {
        forget(name, entry.value);
        if (Object.keys(load()).length) { flush(); } else { show("saved", "ok"); }
      } else if (response.status === 401 || response.status >= 500) {
        show("offline", "warn");  /* kept: the page's own post will save it */
        retrySoon();
      } else {
        forget(name, entry.value);  /* refused for good (stale page, closed questionnaire) */
        show("refused", "warn");
      }
    }).catch(function () {
      sending = false;
      show("offline", "warn");
      retrySoon();
    });
  }

  form.addEventListener("change", function (event) {
    var input = event.target;
    if (input.type !== "radio") { return; }
    var queue = load();
    queue[input.name] = {
      value: input.value,
      key: form.elements.form_key.value,
      csrf: form.elements.csrf_token.value
    };
    store(queue);
    show("saving", "");
    flush();
  });
  form.addEventListener("submit", function (event) {
    if (navigator.onLine === false) { event.preventDefault(); show("offline", "warn"); }
  });
  window.addEventListener("online", flush);
  flush();
}());
