// The fleet pages' script: applies the `status` events of /inventory/events (a device became reachable or
// unreachable, a fault was raised or cleared) to the device rows of the page and to its state-change table, so the
// inventory and devices pages stay current without a reload. Without JavaScript the pages are correct when loaded.
(function () {
  "use strict";
  var table = document.querySelector("[data-status-source]");
  if (!table || !window.EventSource) { return; }
  var status = document.querySelector('[data-testid="fleet-status"]');
  var history = document.querySelector('[data-testid="status-history"] tbody');
  var maxRows = 200;
  function span(cls, text) {
    var s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }
  function setReachable(cell, reachable) {
    cell.textContent = "";
    if (reachable === true) { cell.appendChild(span("ok", "✓ yes")); }
    else if (reachable === false) { cell.appendChild(span("bad", "✗ no")); }
    else { cell.appendChild(span("muted", "unknown")); }
  }
  function setFaults(cell, faults) {
    cell.textContent = "";
    if (!faults || faults.length === 0) { cell.appendChild(span("ok", "none")); return; }
    var list = document.createElement("ul");
    faults.forEach(function (f) {
      var li = document.createElement("li");
      li.className = "bad";
      li.setAttribute("data-code", f.code);
      li.textContent = f.code + ": " + f.message;
      list.appendChild(li);
    });
    cell.appendChild(list);
  }
  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
  }
  var source = new EventSource(table.getAttribute("data-status-source"));
  source.addEventListener("open", function () { if (status) { status.textContent = "Live"; } });
  source.addEventListener("error", function () { if (status) { status.textContent = "Reconnecting…"; } });
  source.addEventListener("status", function (event) {
    var change;
    try { change = JSON.parse(event.data); } catch (e) { return; }
    if (change.device_serial) {
      document.querySelectorAll("tr[data-device]").forEach(function (row) {
        if (row.getAttribute("data-device") !== change.device_serial) { return; }
        var reachable = row.querySelector('[data-field="reachable"]');
        if (reachable) { setReachable(reachable, change.reachable); }
        var faults = row.querySelector('[data-field="faults"]');
        if (faults) { setFaults(faults, change.faults); }
        row.setAttribute("data-updated", String(change.id));
      });
    }
    if (history) {
      var row = document.createElement("tr");
      row.setAttribute("data-change-id", String(change.id));
      cell(row, String(change.at || "").replace("T", " "));
      cell(row, change.site_id);
      cell(row, change.agent_id);
      cell(row, change.device_serial || "—");
      cell(row, change.change);
      cell(row, (change.code ? change.code + ": " : "") + change.message);
      history.insertBefore(row, history.firstChild);
      while (history.rows.length > maxRows) { history.deleteRow(history.rows.length - 1); }
    }
  });
})();
