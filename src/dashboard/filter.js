// The dashboard's filter: shows only the service rows and blocked promotions whose service name
// contains the typed text, in the chosen folder and with a cell in the chosen state; hides groups
// left empty and opens the folded up-to-date table when it has a match. Reads text and data-*
// attributes and writes only `hidden`, `open` and textContent: nothing from the page is ever
// parsed as HTML.
(function () {
  "use strict";
  var form = document.getElementById("filter");
  if (!form) { return; }
  var name = document.getElementById("filter-name");
  var folder = document.getElementById("filter-folder");
  var state = document.getElementById("filter-state");
  var status = document.getElementById("filter-status");
  var settled = document.getElementById("settled");
  // Service rows (id s-...) and blocked promotions (id b-...); groups are tbody.g.
  var rows = document.querySelectorAll("tr[id^='s-'], tr[id^='b-']");
  var groups = document.querySelectorAll("tbody.g");
  function matches(row, text, folder, state) {
    var blocked = row.id.indexOf("b-") === 0;
    var name = row.cells[0].textContent.trim().toLowerCase();
    var where = blocked ? row.getAttribute("data-f") : row.parentNode.getAttribute("data-group");
    var states = blocked ? "blocked" : (row.getAttribute("data-st") || "up_to_date");
    return (text === "" || name.indexOf(text) >= 0) &&
      (folder === null || where === folder) &&
      (state === "" || (" " + states + " ").indexOf(" " + state + " ") >= 0);
  }
  function apply() {
    var text = name.value.trim().toLowerCase();
    var f = folder.selectedIndex > 0 ? folder.value : null;
    var st = state.value;
    var active = text !== "" || f !== null || st !== "";
    var shown = 0;
    var total = 0;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var match = matches(row, text, f, st);
      row.hidden = !match;
      if (row.id.indexOf("s-") === 0) {
        total++;
        if (match) { shown++; }
      }
    }
    for (var g = 0; g < groups.length; g++) {
      groups[g].hidden = groups[g].querySelector("tr[id]:not([hidden])") === null;
    }
    if (active && settled && settled.querySelector("tr[id]:not([hidden])") !== null) {
      settled.open = true;
    }
    status.textContent = active ? shown + " of " + total + " services shown" : "";
  }
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  name.addEventListener("input", apply);
  folder.addEventListener("change", apply);
  state.addEventListener("change", apply);
  form.hidden = false;
}());
