// KubeBot dashboard auto-refresh. Loaded from /static (the CSP allows no inline script).
// Every few seconds, while the tab is visible and the box is ticked, the page is fetched
// again and its <main> swapped in: scroll position, open sections and typing survive.
(function () {
  "use strict";
  var KEY = "kubebot.autoRefresh";
  var seconds = Number(document.body.getAttribute("data-refresh")) || 30;
  var box = document.getElementById("auto-refresh");
  var stamp = document.getElementById("refreshed");
  document.documentElement.classList.add("js");

  function enabled() {
    try { return window.localStorage.getItem(KEY) !== "off"; } catch (e) { return true; }
  }
  if (box) {
    box.checked = enabled();
    box.addEventListener("change", function () {
      try { window.localStorage.setItem(KEY, box.checked ? "on" : "off"); } catch (e) { /* private mode */ }
    });
  }

  function busy() {
    // Someone typing a filter would lose it; the refresh box itself does not count.
    var active = document.activeElement;
    return active && active !== box && (active.tagName === "INPUT" || active.tagName === "SELECT" || active.tagName === "TEXTAREA");
  }

  function openSections() {
    var ids = [];
    document.querySelectorAll("details[id][open]").forEach(function (d) { ids.push(d.id); });
    return ids;
  }

  function refresh() {
    if (!box || !box.checked || document.visibilityState !== "visible" || busy()) { return; }
    var keepOpen = openSections();
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (text) {
        // DOMParser never runs scripts; the server escaped everything in this HTML anyway.
        var fresh = new DOMParser().parseFromString(text, "text/html");
        var main = fresh.getElementById("content");
        var current = document.getElementById("content");
        if (!main || !current) { return; }
        main.querySelectorAll("details[id]").forEach(function (d) {
          if (keepOpen.indexOf(d.id) >= 0) { d.setAttribute("open", ""); } else { d.removeAttribute("open"); }
        });
        current.replaceWith(document.adoptNode(main));
        document.title = fresh.title;
        if (stamp) { stamp.textContent = "updated " + new Date().toLocaleTimeString(); stamp.classList.remove("error"); }
      })
      .catch(function (error) {
        if (stamp) { stamp.textContent = "refresh failed (" + error.message + "), retrying"; stamp.classList.add("error"); }
      });
  }

  window.setInterval(refresh, seconds * 1000);
})();
