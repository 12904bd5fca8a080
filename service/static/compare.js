// Several runs of one dataset side by side (/compare?runs=a,b,c[&pair=a,c]): one line per
// run in each chart, histograms grouped per bin, and the problems two runs disagree on.
"use strict";

(() => {
  const { getJSON, svg, html, clear, fmt, compact, poll, ZONES, zoneBar, problemHref,
          promptCell } = Paced;
  const { PALETTE, frame, emptyNote, stepDomain, stepTicks, linePath } = PacedCharts;
  const BINS = 20;
  const TOP = 20;

  const params = new URLSearchParams(window.location.search);
  const names = (params.get("runs") || "").split(",").filter(Boolean);
  let pair = (params.get("pair") || "").split(",").filter(Boolean);
  const colour = (i) => PALETTE[i % PALETTE.length];
  document.title = "paced · compare " + names.join(", ");

  function share(point, zone) {
    const total = ZONES.reduce((sum, z) => sum + point.zones[z], 0) || 1;
    return point.zones[zone] / total;
  }

  // One <path class="series"> per run with history (a dot marks each run's newest point).
  // yTop: the largest value -> the top of the y axis.
  function drawLines(node, runs, value, yTop, yFormat) {
    const steps = runs.flatMap((r) => r.history.map((p) => p.step));
    if (steps.length === 0) {
      clear(node);
      emptyNote(node, "no history yet: it starts with the first outcomes");
      return;
    }
    const domain = stepDomain(steps);
    const top = yTop(Math.max(...runs.flatMap((r) => r.history.map(value))));
    const { x, y } = frame(node, domain, [0, top], stepTicks(domain), yFormat);
    runs.forEach((r, i) => {
      if (r.history.length === 0) return;
      const points = r.history.map((p) => [p.step, value(p)]);
      const path = svg("path", { class: "series", "data-run": r.run.name, stroke: colour(i),
                                 d: linePath(points, x, y) }, node);
      svg("title", {}, path).textContent = r.run.name;
      const [lx, ly] = points[points.length - 1];
      svg("circle", { class: "series-end", cx: x(lx), cy: y(ly), r: 3, fill: colour(i) }, node);
    });
  }

  // Per bin, one bar per run side by side; heights are shares of each run's seen problems
  // so that runs at different progress stay comparable.
  function drawHistograms(node, runs) {
    const edges = runs[0].difficulty.histogram.edges;
    const shares = runs.map((r) => {
      const counts = r.difficulty.histogram.counts;
      const seen = counts.reduce((a, b) => a + b, 0) || 1;
      return counts.map((c) => c / seen);
    });
    const top = Math.max(0.01, ...shares.flat()) * 1.1;
    const { x, y } = frame(node, [0, 1], [0, top], [0, 0.25, 0.5, 0.75, 1],
                           (v) => Math.round(v * 100) + "%");
    runs.forEach((r, i) => {
      const group = svg("g", { class: "series", "data-run": r.run.name, fill: colour(i) }, node);
      shares[i].forEach((s, b) => {
        const x0 = x(edges[b]) + 1, x1 = x(edges[b + 1]) - 1;
        const width = (x1 - x0) / runs.length;
        const rect = svg("rect", { x: x0 + i * width, width: Math.max(0.5, width), y: y(s),
                                   height: y(0) - y(s) }, group);
        svg("title", {}, rect).textContent =
          `${r.run.name}: p in [${fmt(edges[b], 2)}, ${fmt(edges[b + 1], 2)}): ` +
          `${fmt(r.difficulty.histogram.counts[b])} problems (${(100 * s).toFixed(1)}%)`;
      });
    });
  }

  function drawSummary(runs) {
    const body = document.querySelector("#summary tbody");
    clear(body);
    runs.forEach((r, i) => {
      const d = r.difficulty;
      const row = html("tr", { "data-run": r.run.name }, body);
      const name = html("td", {}, row);
      html("span", { class: "swatch", style: `background:${colour(i)}` }, name);
      html("a", { href: "/runs/" + encodeURIComponent(r.run.name) }, name, r.run.name);
      zoneBar(html("td", { class: "zones" }, row), d.zones);
      html("td", {}, row, fmt(r.run.step));
      html("td", {}, row, fmt(r.mean_pass_rate));
      html("td", {}, row, fmt(d.mean_weight, 4));
      html("td", {}, row, compact(d.effective_problems));
      html("td", {}, row, `${r.run.kernel.alpha}, ${r.run.kernel.beta}`);
      html("td", {}, row, r.run.estimator.kind);
    });
    const legend = document.getElementById("run-legend");
    clear(legend);
    runs.forEach((r, i) => {
      const item = html("span", {}, legend);
      html("span", { class: "swatch", style: `background:${colour(i)}` }, item);
      item.appendChild(document.createTextNode(r.run.name));
    });
  }

  function drawPairSelectors(current) {
    for (const [id, chosen] of [["pair-a", current[0]], ["pair-b", current[1]]]) {
      const select = document.getElementById(id);
      if (select.options.length === 0) {
        for (const name of names) html("option", { value: name }, select, name);
        select.addEventListener("change", choosePair);
      }
      select.value = chosen;
    }
    document.getElementById("head-a").textContent = "p " + current[0];
    document.getElementById("head-b").textContent = "p " + current[1];
  }

  function choosePair() {
    const a = document.getElementById("pair-a").value;
    const b = document.getElementById("pair-b").value;
    if (a === b) return; // the API refuses a pair of one run; wait for the other choice
    pair = [a, b];
    params.set("pair", pair.join(","));
    window.history.replaceState(null, "", window.location.pathname + "?" + params.toString());
    refresh();
  }

  function drawDifferences(rows, first) {
    const body = document.querySelector("#differences tbody");
    clear(body);
    if (rows.length === 0) {
      html("td", { colspan: "7" }, html("tr", {}, body),
           "no problem with attempts in both runs has different pass rates");
    }
    for (const item of rows) {
      const row = html("tr", {}, body);
      const id = html("td", { class: "id", title: item.problem_id }, row);
      html("a", { href: problemHref(first, item.problem_id) }, id, item.problem_id);
      promptCell(row, item);
      html("td", { class: "answer", title: item.answer ?? "" }, row, item.answer ?? "–");
      html("td", {}, row, fmt(item.pass_rates[0]));
      html("td", {}, row, fmt(item.pass_rates[1]));
      const sign = item.difference > 0 ? "+" : "";
      html("td", { class: item.difference > 0 ? "up" : "down" }, row,
           sign + fmt(item.difference));
      html("td", {}, row, `${fmt(item.attempts[0], 1)} / ${fmt(item.attempts[1], 1)}`);
    }
  }

  async function load() {
    if (names.length < 2) throw new Error("name the runs to compare: /compare?runs=a,b");
    const search = new URLSearchParams({ runs: names.join(","), bins: BINS, top: TOP });
    if (pair.length === 2) search.set("pair", pair.join(","));
    const data = await getJSON("/v1/compare?" + search.toString());
    document.getElementById("dataset").textContent = "dataset " + data.dataset;
    const runs = data.runs;
    drawSummary(runs);
    for (const zone of ZONES) {
      // Zoomed to the largest share: a frontier of a few % would be flat on a 0-100% axis.
      drawLines(document.getElementById("share-" + zone), runs, (p) => share(p, zone),
                (most) => Math.min(1, Math.max(0.02, most * 1.1)),
                (v) => (v * 100).toFixed(v < 0.1 ? 1 : 0) + "%");
    }
    drawLines(document.getElementById("effective"), runs, (p) => p.effective_problems,
              (most) => Math.max(1, most) * 1.1, compact);
    drawHistograms(document.getElementById("histograms"), runs);
    drawPairSelectors(data.pair);
    drawDifferences(data.differences, data.pair[0]);
  }

  const zoneLegend = document.getElementById("zone-legend");
  for (const zone of ZONES) {
    const item = html("span", {}, zoneLegend);
    html("span", { class: `swatch zone-${zone}` }, item);
    item.appendChild(document.createTextNode(zone));
  }
  const refresh = poll(load);
})();
