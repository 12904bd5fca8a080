// The runs overview at /: one row per run with its zone bar and newest numbers, filters by
// dataset and name, and a selection to open side by side on /compare.
"use strict";

(() => {
  const { getJSON, html, clear, fmt, compact, poll, ZONES, zoneBar, ago } = Paced;
  const params = new URLSearchParams(window.location.search);
  const filters = { dataset: params.get("dataset") || "", name: params.get("name") || "" };
  const selected = new Map(); // run name -> dataset, kept across redraws
  const datasets = new Set();
  const datasetSelect = document.getElementById("dataset");
  const nameInput = document.getElementById("name");
  const compareButton = document.getElementById("compare");
  const selectionNote = document.getElementById("selection");
  nameInput.value = filters.name;

  // What the name box means: a glob if it has a `*`, else a prefix.
  function nameGlob(text) {
    const value = text.trim().toLowerCase();
    if (!value) return "";
    return value.includes("*") ? value : value + "*";
  }

  function query() {
    const search = new URLSearchParams();
    if (filters.dataset) search.set("dataset", filters.dataset);
    if (filters.name) search.set("name", nameGlob(filters.name));
    return search.toString();
  }

  function keepFiltersInAddress() {
    const search = new URLSearchParams();
    if (filters.dataset) search.set("dataset", filters.dataset);
    if (filters.name) search.set("name", filters.name);
    const text = search.toString();
    window.history.replaceState(null, "", window.location.pathname + (text ? "?" + text : ""));
  }

  function drawDatasetOptions() {
    const known = new Set([...datasetSelect.options].map((o) => o.value));
    for (const name of [...datasets].sort()) {
      if (!known.has(name)) html("option", { value: name }, datasetSelect, name);
    }
    datasetSelect.value = filters.dataset;
  }

  function drawSelection() {
    const names = [...selected.keys()];
    const onOneDataset = new Set(selected.values()).size <= 1;
    compareButton.disabled = names.length < 2 || names.length > 8 || !onOneDataset;
    if (!onOneDataset) selectionNote.textContent = "selected runs are on different datasets";
    else if (names.length > 8) selectionNote.textContent = "compare at most 8 runs";
    else if (names.length) selectionNote.textContent = `${names.length} selected: ${names.join(", ")}`;
    else selectionNote.textContent = "select runs of one dataset to compare them";
  }

  function drawRow(body, item) {
    const { run, latest } = item;
    const row = html("tr", { "data-run": run.name }, body);
    const box = html("input", { type: "checkbox", "aria-label": "select " + run.name },
                     html("td", {}, row));
    box.checked = selected.has(run.name);
    box.addEventListener("change", () => {
      if (box.checked) selected.set(run.name, run.dataset);
      else selected.delete(run.name);
      drawSelection();
    });
    const link = html("a", { href: "/runs/" + encodeURIComponent(run.name) }, null, run.name);
    html("td", {}, row).appendChild(link);
    html("td", {}, row, run.dataset);
    const zones = html("td", { class: "zones" }, row);
    if (latest) zoneBar(zones, latest.zones);
    else html("span", { class: "muted" }, zones, "no outcomes yet");
    html("td", {}, row, fmt(run.step));
    html("td", {}, row, latest ? fmt(latest.mean_pass_rate) : "–");
    html("td", {}, row, latest ? fmt(latest.mean_weight, 4) : "–");
    html("td", {}, row, latest ? compact(latest.effective_problems) : "–");
    const when = latest ? latest.created_at : run.created_at;
    html("td", { title: new Date(when).toLocaleString() }, row, latest ? ago(when) : "never");
  }

  async function load() {
    const text = query();
    const { items } = await getJSON("/v1/runs-summary" + (text ? "?" + text : ""));
    const body = document.querySelector("#runs tbody");
    clear(body);
    if (items.length === 0) {
      html("td", { colspan: "9" }, html("tr", {}, body),
           filters.dataset || filters.name ? "no run matches the filters" : "no runs yet");
    }
    for (const item of items) {
      datasets.add(item.run.dataset);
      drawRow(body, item);
    }
    drawDatasetOptions();
    drawSelection();
  }

  const refresh = poll(load);
  datasetSelect.addEventListener("change", () => {
    filters.dataset = datasetSelect.value;
    keepFiltersInAddress();
    refresh();
  });
  let typing;
  nameInput.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      filters.name = nameInput.value;
      keepFiltersInAddress();
      refresh();
    }, 250);
  });
  document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
  compareButton.addEventListener("click", () => {
    const names = [...selected.keys()].map(encodeURIComponent).join(",");
    window.location.href = "/compare?runs=" + names;
  });
  const legend = document.getElementById("zone-legend");
  for (const zone of ZONES) {
    const item = html("span", {}, legend);
    html("span", { class: `swatch zone-${zone}` }, item);
    item.appendChild(document.createTextNode(zone));
  }
})();
