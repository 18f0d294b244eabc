// Filters and sorting of the claims table (rows are in the HTML; this only hides and reorders them).
(function () {
  "use strict";
  const table = document.getElementById("claims");
  if (!table) return;
  const rows = Array.from(table.tBodies[0].rows);
  const selects = Array.from(document.querySelectorAll("select[data-filter]"));
  const search = document.getElementById("f-text");
  const shown = document.getElementById("shown");

  function apply() {
    const want = selects.map((s) => [s.dataset.filter, s.value]).filter(([, v]) => v);
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    let n = 0;
    for (const row of rows) {
      const ok = want.every(([k, v]) => row.dataset[k] === v) && words.every((w) => row.dataset.text.includes(w));
      row.hidden = !ok;
      if (ok) n += 1;
    }
    shown.textContent = n + " of " + rows.length + " claims";
    const params = new URLSearchParams();
    want.forEach(([k, v]) => params.set(k, v));
    if (search.value) params.set("q", search.value);
    history.replaceState(null, "", params.toString() ? "#" + params.toString() : location.pathname);
  }

  function sortBy(th) {
    const col = Number(th.dataset.col);
    const dir = th.classList.contains("asc") ? -1 : 1;
    table.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
    th.classList.add(dir === 1 ? "asc" : "desc");
    const key = (row) => row.cells[col].dataset.sort ?? row.cells[col].textContent;
    const num = (v) => (v === "" || isNaN(Number(v)) ? null : Number(v));
    rows.sort((a, b) => {
      const x = key(a), y = key(b), nx = num(x), ny = num(y);
      if (nx !== null && ny !== null) return dir * (nx - ny);
      if (x === "" || y === "") return x === "" ? 1 : -1;  // empty cells last either way
      return dir * x.localeCompare(y);
    });
    const body = table.tBodies[0];
    rows.forEach((r) => body.appendChild(r));
  }

  selects.forEach((s) => s.addEventListener("change", apply));
  search.addEventListener("input", apply);
  table.querySelectorAll("th").forEach((th) => th.addEventListener("click", () => sortBy(th)));
  // a link such as index.html#verdict=refuted&paper=holitom opens the table filtered
  const start = new URLSearchParams(location.hash.slice(1));
  let given = false;
  selects.forEach((s) => { if (start.get(s.dataset.filter)) { s.value = start.get(s.dataset.filter); given = true; } });
  if (start.get("q")) { search.value = start.get("q"); given = true; }
  if (given) apply();
})();
