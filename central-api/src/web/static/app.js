// The dashboard's only script: the live punches table. Everything else works without JavaScript.
(function () {
  "use strict";
  var table = document.querySelector('[data-testid="live-punches"]');
  if (!table || !window.EventSource) { return; }
  var body = table.querySelector("tbody");
  var status = document.querySelector('[data-testid="live-status"]');
  var maxRows = 200;
  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
  }
  var source = new EventSource(table.getAttribute("data-source") || "/live/events");
  source.addEventListener("open", function () { if (status) { status.textContent = "Connected"; } });
  source.addEventListener("error", function () { if (status) { status.textContent = "Reconnecting…"; } });
  source.addEventListener("punch", function (event) {
    var punch;
    try { punch = JSON.parse(event.data); } catch (e) { return; }
    var row = document.createElement("tr");
    row.setAttribute("data-key", punch.key || "");
    cell(row, String(punch.local_time || "").replace("T", " "));
    cell(row, punch.time_zone);
    cell(row, punch.site_id);
    cell(row, punch.device_name ? punch.device_name + " (" + punch.device_serial + ")" : punch.device_serial);
    cell(row, punch.pin);
    cell(row, punch.employee_name);
    cell(row, punch.direction);
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > maxRows) { body.deleteRow(body.rows.length - 1); }
  });
})();
