// The wall screen's player (/kiosk/<playlist>): clock, rotation, data ages and STALE marks,
// the OFFLINE overlay, check-ins with backoff, and reloads on deploy or after an outage.
// Dash serves this file to every page: it does nothing outside a kiosk page or a page
// framed by one (there it only marks the document, so kiosk.css hides the controls).
//
// Nothing here counts ticks: each tick reads the wall clock (Date.now()), so a browser that
// throttles timers (a hidden tab: once a minute) shows late but never wrong ages, clock or
// rotation, and the next tick catches up.
(function () {
  "use strict";
  var PLAYER = /^\/kiosk\/(?!setup\/|stopped$|api\/)[^/]+$/;

  function framedByKiosk() {
    try {
      return window.top !== window && PLAYER.test(window.top.location.pathname);
    } catch (e) {
      return false;
    }
  }

  var isPlayer = PLAYER.test(window.location.pathname) && window.top === window;
  if (!isPlayer && !framedByKiosk()) {
    return;
  }
  var html = document.documentElement;
  html.classList.add("kiosk-mode");
  if (!isPlayer) {
    html.classList.add("kiosk-embed");
    return;
  }
  // Dark by default on a wall (a choice kept in the browser still wins).
  try {
    if (!window.localStorage.getItem("p2pdash-theme")) {
      window.localStorage.setItem("p2pdash-theme", "dark");
    }
  } catch (e) { /* storage off: the CSS is dark anyway */ }
  html.setAttribute("data-bs-theme", "dark");

  var OFFLINE_AFTER = 2;      // failed check-ins before the OFFLINE overlay
  var RELOAD_AFTER = 5;       // ... before a full reload once the server answers again
  var MAX_BACKOFF = 6;        // the longest wait, in check-in periods
  var NO_LAYOUT_RELOAD_MS = 60000;
  var DAILY_RELOAD_MS = 24 * 3600 * 1000;
  var loadedAt = Date.now();

  var beat = {failures: 0, lastContact: null, offset: 0, timer: null, stopped: false,
              reloadWhenBack: false};
  var player = {root: null, views: [], index: -1, switchAt: 0};

  function root() {
    return document.getElementById("kiosk-root");
  }

  function now() {
    return Date.now() + beat.offset; // the server's clock, as of the last check-in
  }

  function period() {
    var r = root();
    var ms = r ? parseInt(r.getAttribute("data-heartbeat-ms"), 10) : NaN;
    return ms > 0 ? ms : 5000;
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el && el.textContent !== text) {
      el.textContent = text;
    }
  }

  function ageText(seconds) {
    if (seconds < 120) { return Math.max(0, Math.round(seconds)) + " s"; }
    if (seconds < 7200) { return Math.round(seconds / 60) + " min"; }
    if (seconds < 172800) { return Math.round(seconds / 3600) + " h"; }
    return Math.round(seconds / 86400) + " d";
  }

  function zone(r) {
    return (r && r.getAttribute("data-timezone")) || "UTC";
  }

  function clockText(ms, tz, withDate) {
    var options = {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
                   timeZone: tz};
    if (withDate) {
      options.year = "numeric"; options.month = "2-digit"; options.day = "2-digit";
    }
    try {
      return new Intl.DateTimeFormat("en-GB", options).format(new Date(ms));
    } catch (e) {
      return new Date(ms).toISOString().slice(withDate ? 0 : 11, 19).replace("T", " ");
    }
  }

  // Every panel: its age and, past its stale age, the STALE mark (kiosk.css dims it).
  function markPanels(r) {
    var panels = r.querySelectorAll(".kiosk-panel");
    var t = now();
    for (var i = 0; i < panels.length; i++) {
      var panel = panels[i];
      var source = panel.hasAttribute("data-ts") ? panel : panel.querySelector("[data-ts]");
      if (!source) { continue; }
      var ts = parseInt(source.getAttribute("data-ts"), 10) || 0;
      var limit = parseInt(source.getAttribute("data-stale"), 10) || 60;
      var age = (t - ts) / 1000;
      var stale = !ts || age > limit;
      var label = ts ? ageText(age) : "no data";
      if (panel.getAttribute("data-kiosk-age") !== label) {
        panel.setAttribute("data-kiosk-age", label);
      }
      if (stale !== panel.hasAttribute("data-kiosk-stale")) {
        if (stale) { panel.setAttribute("data-kiosk-stale", ""); }
        else { panel.removeAttribute("data-kiosk-stale"); }
      }
    }
  }

  function show(index) {
    var views = player.views;
    for (var i = 0; i < views.length; i++) {
      var active = i === index;
      var frame = views[i].querySelector("iframe.kiosk-frame");
      if (active) {
        views[i].setAttribute("data-kiosk-active", "");
      } else {
        views[i].removeAttribute("data-kiosk-active");
      }
      if (frame) { // load a page on its turn, empty it after: no page lives on hidden
        var wanted = active ? frame.getAttribute("data-src") : "about:blank";
        if (frame.getAttribute("src") !== wanted) { frame.setAttribute("src", wanted); }
      }
    }
    player.index = index;
    var view = views[index];
    var dwell = parseInt(view.getAttribute("data-dwell"), 10) || 30;
    player.switchAt = Date.now() + dwell * 1000;
    var title = view.getAttribute("data-title") || "";
    setText("kiosk-title", views.length > 1 ?
      title + "  \u00b7  " + (index + 1) + "/" + views.length : title);
  }

  function rotate(r) {
    if (player.root !== r) { // a new render of the page: start the playlist over
      player.root = r;
      player.views = Array.prototype.slice.call(r.querySelectorAll(".kiosk-view"));
      player.index = -1;
    }
    if (!player.views.length) { return; }
    if (player.index < 0) {
      show(0);
    } else if (player.views.length > 1 && Date.now() >= player.switchAt) {
      show((player.index + 1) % player.views.length);
    }
  }

  function tick() {
    var r = root();
    if (r) {
      var t = now();
      setText("kiosk-clock", clockText(t, zone(r), true));
      setText("kiosk-zone", zone(r));
      rotate(r);
      markPanels(r);
    }
    // Wake at the next whole second, so the clock ticks evenly.
    window.setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
  }

  function setOffline(offline) {
    var r = root();
    if (!r) { return; }
    if (offline) {
      setText("kiosk-offline-since", beat.lastContact ?
        clockText(beat.lastContact + beat.offset, zone(r), true) + " " + zone(r) :
        "none since this page loaded");
      r.setAttribute("data-kiosk-offline", "");
    } else {
      r.removeAttribute("data-kiosk-offline");
    }
  }

  function leave(url) {
    beat.stopped = true;
    window.location.replace(url);
  }

  function schedule(delay) {
    if (beat.stopped) { return; }
    window.clearTimeout(beat.timer);
    beat.timer = window.setTimeout(checkIn, delay);
  }

  function showing() {
    var view = player.views[player.index];
    return view ? (view.getAttribute("data-title") || "") + " " + (player.index + 1) + "/" +
      player.views.length : "";
  }

  function reason(answer) {
    var r = root();
    var device = answer.device;
    if (device === "revoked" || device === "signed_out") {
      return "stop";
    }
    if (device !== "ok" && device !== "user") {
      return null; // "unknown": the database is down; the panels age, the page stays
    }
    if (!r) {
      return Date.now() - loadedAt > NO_LAYOUT_RELOAD_MS ? "reload" : null;
    }
    if (answer.build && answer.build !== r.getAttribute("data-build")) {
      return "reload"; // deployed again
    }
    if (device === "ok" && answer.playlist &&
        answer.playlist !== r.getAttribute("data-playlist")) {
      return "follow";
    }
    if (device === "ok" && answer.playlist_hash &&
        answer.playlist_hash !== r.getAttribute("data-playlist-hash")) {
      return "reload"; // its playlist was edited
    }
    return Date.now() - loadedAt > DAILY_RELOAD_MS ? "reload" : null;
  }

  function answered(answer) {
    var failures = beat.failures;
    beat.failures = 0;
    beat.lastContact = Date.now();
    if (typeof answer.server_time === "number") {
      beat.offset = answer.server_time - Date.now();
    }
    setOffline(false);
    beat.reloadWhenBack = beat.reloadWhenBack || failures >= RELOAD_AFTER;
    var next = reason(answer);
    if (next === "stop") {
      return leave("/kiosk/stopped?why=" + answer.device);
    }
    if (next === "follow") {
      return leave("/kiosk/" + encodeURIComponent(answer.playlist));
    }
    if (next === "reload" || (beat.reloadWhenBack &&
                              (answer.device === "ok" || answer.device === "user"))) {
      // Only once the server answers: a reload while it is down would leave the browser
      // on its own error page, with no script to come back.
      return leave(window.location.href);
    }
    schedule(period());
  }

  function failed() {
    beat.failures += 1;
    if (beat.failures >= OFFLINE_AFTER) {
      setOffline(true);
    }
    var steps = Math.min(Math.pow(2, beat.failures - 1), MAX_BACKOFF);
    schedule(period() * steps * (0.75 + Math.random() * 0.5));
  }

  function checkIn() {
    if (beat.stopped) { return; }
    var controller = window.AbortController ? new AbortController() : null;
    var limit = window.setTimeout(function () {
      if (controller) { controller.abort(); }
    }, Math.max(4000, 2 * period()));
    window.fetch("/kiosk/api/heartbeat?showing=" + encodeURIComponent(showing()),
                 {cache: "no-store", credentials: "same-origin",
                  signal: controller ? controller.signal : undefined})
      .then(function (response) {
        if (!response.ok) { throw new Error("check-in answered " + response.status); }
        return response.json();
      })
      .then(answered, failed)
      .then(function () { window.clearTimeout(limit); });
  }

  // Back from hidden: catch up at once rather than at the next throttled timer.
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { schedule(0); }
  });
  window.kioskPlayer = {beat: beat, player: player}; // for tests and the soak benchmark
  tick();
  schedule(0);
}());
