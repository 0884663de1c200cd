// cetrack dashboard: live updates, and nothing else. A page of "now"
// (body data-live="on") follows the server's change events and reloads when
// a change arrives; the status line says whether the feed is live. Every
// page works without this script.
"use strict";
(function () {
  if (document.body.dataset.live !== "on" || !window.EventSource) {
    return;
  }
  var status = document.getElementById("feed");
  function say(text, ok) {
    if (status) {
      status.textContent = text;
      status.className = ok ? "feed" : "feed off";
    }
  }
  var source = new EventSource("/events");
  var pending = null;
  source.onopen = function () {
    say("Live: this page updates when a record changes.", true);
  };
  source.addEventListener("change", function () {
    if (pending === null) {
      // Changes often come in bursts: one reload for a burst.
      pending = setTimeout(function () { window.location.reload(); }, 300);
    }
  });
  source.addEventListener("interrupted", function (e) {
    say("Live updates interrupted (" + e.data + "); reconnecting…", false);
  });
  source.onerror = function () {
    say("Live updates interrupted; reconnecting…", false);
  };
})();
