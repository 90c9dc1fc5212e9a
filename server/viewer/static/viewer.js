// The live viewer's only script: refreshes the runs list while runs run, and submits the
// question browser's filters when one changes. Talks to this evaluator only (/api/runs).
(function () {
  "use strict";
  var table = document.getElementById("runs");
  if (table && table.getAttribute("data-live") === "1") {
    var poll = function () {
      fetch("/api/runs", {credentials: "same-origin", cache: "no-store"}).then(function (resp) {
        if (!resp.ok) { throw new Error("runs: HTTP " + resp.status); }
        return resp.json();
      }).then(function (runs) {
        var live = false;
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
          if (run.active) { live = true; }
        });
        table.setAttribute("data-refreshed", String(Date.now()));
        if (live) { window.setTimeout(poll, 1500); } else { table.setAttribute("data-live", "0"); }
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
