// The import page (templates/imports/import.html). Loaded with the page's CSP nonce; no
// inline handlers. Without it the page works the same: the location select is only hidden
// while the chosen format is a customers file, which ignores it.
(function () {
  "use strict";
  var format = document.getElementById("id_format");
  var location = document.getElementById("id_location");
  if (!format || !location) { return; }
  var row = location.closest("p");
  if (!row) { return; }
  var sync = function () {
    var history = format.value === "square-transactions" || format.value === "square-items";
    row.hidden = !history;
  };
  format.addEventListener("change", sync);
  sync();
})();
