// The Afflux console's only script (served by the console itself; CSP: script-src 'self').
// Every page works without it; it adds: times in the viewer's own time zone, sortable
// tables, "select all" for bulk review, copy buttons, and the one-time sign-in link.
(function () {
  "use strict";

  function localTimes() {
    var long = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"});
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    document.querySelectorAll("time[datetime*='T']").forEach(function (node) {
      var moment = new Date(node.getAttribute("datetime"));
      if (!isNaN(moment)) {
        node.textContent = long.format(moment);
        node.title = node.getAttribute("datetime") + " (shown in " + zone + ")";
      }
    });
    document.querySelectorAll("[data-zone]").forEach(function (node) { node.textContent = zone; });
  }

  function sortValue(cell) {
    var given = cell.getAttribute("data-sort");
    var text = given !== null ? given : cell.textContent.trim();
    var number = text.replace(/[,\s]|[A-Z]{3}$/g, "");
    return number !== "" && !isNaN(number) ? parseFloat(number) : text.toLowerCase();
  }

  function sortable(table) {
    table.querySelectorAll("thead th button.sort").forEach(function (button) {
      button.addEventListener("click", function () {
        var th = button.closest("th");
        var index = Array.prototype.indexOf.call(th.parentNode.children, th);
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("thead th[aria-sort]").forEach(function (o) { o.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.classList.contains("empty-row"); });
        rows.sort(function (a, b) {
          var x = sortValue(a.cells[index]), y = sortValue(b.cells[index]);
          if (x === y) return 0;
          return (x > y ? 1 : -1) * (ascending ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  function selectAll() {
    var all = document.getElementById("select-all");
    if (!all) return;
    var boxes = function () { return document.querySelectorAll("input[name=conversion]"); };
    var count = document.getElementById("selected-count");
    var update = function () {
      var n = Array.prototype.filter.call(boxes(), function (b) { return b.checked; }).length;
      if (count) count.textContent = n + " selected";
    };
    all.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = all.checked; });
      update();
    });
    boxes().forEach(function (b) { b.addEventListener("change", update); });
    update();
  }

  function copyButtons() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest("button.copy");
      if (!button) return;
      var field = document.getElementById(button.getAttribute("data-copy"));
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.textContent.trim()).then(done);
      } else {
        var range = document.createRange();
        range.selectNodeContents(field);
        window.getSelection().removeAllRanges();
        window.getSelection().addRange(range);
        document.execCommand("copy");
        done();
      }
    });
  }

  function signInLink() {
    // make run prints /console/signin#token=...: a fragment never reaches a server or its logs.
    var form = document.getElementById("token-form");
    if (!form || location.hash.indexOf("#token=") !== 0) return;
    var token = decodeURIComponent(location.hash.slice(7));
    history.replaceState(null, "", location.pathname);
    document.getElementById("token").value = token;
    form.submit();
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes();
    document.querySelectorAll("table.sortable").forEach(sortable);
    selectAll();
    copyButtons();
    signInLink();
  });
  window.addEventListener("hashchange", signInLink);
})();
