/* Live regions for console pages: no framework, no websocket.

   An element with data-live-url="<url>" has its contents replaced every data-live-every
   seconds (default 5) by the HTML that URL answers. Polling stops while the tab is hidden and
   resumes, with an immediate refresh, when it is shown again. A failed fetch keeps the last
   contents and marks the element with data-live-stale="1" (styled in console.css) so the page
   never pretends to be current. Included from templates/admin/base_site.html. */
(function () {
  "use strict";
  var timers = [];

  function refresh(el) {
    var url = el.getAttribute("data-live-url");
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        el.innerHTML = html;
        el.removeAttribute("data-live-stale");
        el.setAttribute("data-live-updated", new Date().toISOString());
        el.dispatchEvent(new CustomEvent("live:updated", { bubbles: true }));
      })
      .catch(function () { el.setAttribute("data-live-stale", "1"); });
  }

  function start() {
    stop();
    document.querySelectorAll("[data-live-url]").forEach(function (el) {
      var every = parseFloat(el.getAttribute("data-live-every") || "5") * 1000;
      timers.push(setInterval(function () { refresh(el); }, every));
    });
  }

  function stop() {
    timers.forEach(clearInterval);
    timers = [];
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { stop(); return; }
    document.querySelectorAll("[data-live-url]").forEach(refresh);
    start();
  });
  document.addEventListener("DOMContentLoaded", function () { if (!document.hidden) { start(); } });
  window.opsLive = { refresh: refresh, start: start, stop: stop };
})();
