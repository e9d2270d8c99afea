/* The index's tables: sort by a column, filter by track and name, switch cohort/task by URL.
   Plain DOM code, no library: the page works without it (all tables shown, board order). */
(function () {
  "use strict";

  function sortValue(row, index, numeric) {
    var raw = row.cells[index].getAttribute("data-sort");
    if (raw === null || raw === "") return null;
    return numeric ? parseFloat(raw) : raw;
  }

  // Missing values last whatever the direction; ties keep the board's order.
  function compare(a, b, direction) {
    if (a.value === null || b.value === null) {
      if (a.value === b.value) return a.order - b.order;
      return a.value === null ? 1 : -1;
    }
    if (a.value < b.value) return -direction;
    if (a.value > b.value) return direction;
    return a.order - b.order;
  }

  function sortBy(table, th) {
    var index = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    var first = th.getAttribute("data-first") === "descending" ? "descending" : "ascending";
    var next = current === "none" ? first : current === "ascending" ? "descending" : "ascending";
    var direction = next === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (row) {
      return {
        row: row,
        value: sortValue(row, index, numeric),
        order: parseInt(row.getAttribute("data-order"), 10),
      };
    });
    rows.sort(function (a, b) { return compare(a, b, direction); });
    rows.forEach(function (item) { body.appendChild(item.row); });
    table.querySelectorAll("thead th").forEach(function (other) {
      other.setAttribute("aria-sort", other === th ? next : "none");
    });
  }

  function applyFilters() {
    var track = document.getElementById("track-filter").value;
    var text = document.getElementById("text-filter").value.trim().toLowerCase();
    var shown = 0, total = 0;
    document.querySelectorAll("section.board-table tbody tr").forEach(function (row) {
      var tracks = (row.getAttribute("data-tracks") || "").split(" ");
      var name = row.getAttribute("data-model").toLowerCase();
      var visible = (!track || tracks.indexOf(track) >= 0) && (!text || name.indexOf(text) >= 0);
      row.hidden = !visible;
      if (!row.closest("section").hidden) {
        total += 1;
        if (visible) shown += 1;
      }
    });
    document.getElementById("filter-status").textContent =
      track || text ? shown + " of " + total + " rows shown" : "";
  }

  function showSection() {
    var sections = document.querySelectorAll("section.board-table");
    if (!sections.length) return;
    var wanted = decodeURIComponent(window.location.hash.slice(1));
    var target = sections[0].id;
    sections.forEach(function (s) { if (s.id === wanted) target = wanted; });
    sections.forEach(function (s) { s.hidden = s.id !== target; });
    document.querySelectorAll(".cohort-block").forEach(function (block) {
      block.hidden = !block.querySelector("section.board-table:not([hidden])");
    });
    document.querySelectorAll(".switch-link").forEach(function (link) {
      if (link.getAttribute("data-target") === target) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    });
    applyFilters();
  }

  document.documentElement.classList.add("js");
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th) {
      th.querySelector("button").addEventListener("click", function () { sortBy(table, th); });
    });
  });
  document.getElementById("track-filter").addEventListener("change", applyFilters);
  document.getElementById("text-filter").addEventListener("input", applyFilters);
  window.addEventListener("hashchange", showSection);
  showSection();
})();
