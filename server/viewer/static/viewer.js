// The live viewer's only script: refreshes the runs list's active runs (queued, running) until
// they end, and submits the question browser's filters when one changes. Talks to this
// evaluator only (/api/runs?ids=...). Runs created after the page loaded appear on a reload.
(function () {
  "use strict";
  var table = document.getElementById("runs");
  if (table && table.getAttribute("data-live") === "1") {
    var active = [];
    var rows = table.querySelectorAll('tr[data-active="1"]');
    for (var r = 0; r < rows.length; r++) { active.push(rows[r].getAttribute("data-run")); }
    var poll = function () {
      var url = "/api/runs?ids=" + encodeURIComponent(active.join(","));
      fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (resp) {
        if (!resp.ok) { throw new Error("runs: HTTP " + resp.status); }
        return resp.json();
      }).then(function (runs) {
        active = [];
        runs.forEach(function (run) {
          var row = table.querySelector('tr[data-run="' + run.id + '"]');
          if (!row) { return; }
          var set = function (key, text) {
            var cell = row.querySelector('[data-key="' + key + '"]');
            if (cell) { cell.textContent = text; }
          };
          set("state", run.state_text);
          set("done", run.done + " / " + run.total);
          set("correct", String(run.correct));
          set("errors", String(run.errors));
          set("rate", run.rate_text);
          set("eta", run.eta_text);
          var state = row.querySelector('[data-key="state"]');
          state.className = "state " + run.state + (run.waiting ? " waiting" : "");
          row.setAttribute("data-state", run.state);
          row.setAttribute("data-done", String(run.done));
          var bar = row.querySelector("progress");
          if (bar) { bar.max = Math.max(1, run.total); bar.value = run.done; }
          row.setAttribute("data-active", run.active ? "1" : "0");
          if (run.active) { active.push(run.id); }
        });
        table.setAttribute("data-refreshed", String(Date.now()));
        if (active.length) { window.setTimeout(poll, 1500); } else { table.setAttribute("data-live", "0"); }
      }).catch(function () { window.setTimeout(poll, 5000); });
    };
    window.setTimeout(poll, 1000);
  }
  var filters = document.getElementById("filters");
  if (filters) {
    var selects = filters.querySelectorAll("select");
    for (var i = 0; i < selects.length; i++) {
      selects[i].addEventListener("change", function () { filters.submit(); });
    }
  }
})();
