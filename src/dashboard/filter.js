// The dashboard's filter: shows only the rows (tr[data-s]) whose service name contains the
// typed text, in the chosen folder and with a cell in the chosen state; hides folder groups left
// empty and opens the folded up-to-date table when it has a match. Reads data-* attributes and
// writes only `hidden`, `open` and textContent: nothing from the page is ever parsed as HTML.
(function () {
  "use strict";
  var form = document.getElementById("filter");
  if (!form) { return; }
  var name = document.getElementById("filter-name");
  var folder = document.getElementById("filter-folder");
  var state = document.getElementById("filter-state");
  var status = document.getElementById("filter-status");
  var settled = document.getElementById("settled");
  var rows = document.querySelectorAll("tr[data-s]");
  var groups = document.querySelectorAll("tbody[data-group]");
  function apply() {
    var text = name.value.trim().toLowerCase();
    var f = folder.value;
    var st = state.value;
    var active = text !== "" || f !== "" || st !== "";
    var shown = 0;
    var total = 0;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var match = (text === "" || row.getAttribute("data-s").toLowerCase().indexOf(text) >= 0) &&
        (f === "" || row.getAttribute("data-f") === f) &&
        (st === "" || (" " + row.getAttribute("data-st") + " ").indexOf(" " + st + " ") >= 0);
      row.hidden = !match;
      if (row.hasAttribute("data-m")) {
        total++;
        if (match) { shown++; }
      }
    }
    for (var g = 0; g < groups.length; g++) {
      groups[g].hidden = groups[g].querySelector("tr[data-s]:not([hidden])") === null;
    }
    if (active && settled && settled.querySelector("tr[data-s]:not([hidden])") !== null) {
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
