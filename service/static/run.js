// One run's dashboard: summaries from /overview and /history, redrawn every few seconds.
"use strict";

(() => {
  const { getJSON, svg, html, clear, fmt, compact, poll, ZONES, problemHref, promptCell } = Paced;
  const { frame, emptyNote, stepDomain, stepTicks } = PacedCharts;
  const BINS = 20;
  const TOP = 10;

  const run = decodeURIComponent(window.location.pathname.split("/")[2] || "");
  const base = "/v1/runs/" + encodeURIComponent(run);
  document.getElementById("run-name").textContent = run;
  document.title = "paced · " + run;

  function drawHistogram(node, histogram) {
    const { edges, counts } = histogram;
    const top = Math.max(1, ...counts);
    const { x, y } = frame(node, [0, 1], [0, top], [0, 0.25, 0.5, 0.75, 1], compact);
    counts.forEach((count, i) => {
      const x0 = x(edges[i]) + 1, x1 = x(edges[i + 1]) - 1;
      const rect = svg("rect", { class: "bar", x: x0, width: Math.max(1, x1 - x0),
                                 y: y(count), height: y(0) - y(count), "data-count": count }, node);
      svg("title", {}, rect).textContent =
        `p in [${fmt(edges[i], 2)}, ${fmt(edges[i + 1], 2)}): ${fmt(count)} problems`;
    });
  }

  // w(p) comes from the API (overview.kernel_curve): the kernel is defined once, in the core.
  function drawKernel(node, curve, histogram) {
    const peak = Math.max(...curve.w) || 1;
    const { x, y } = frame(node, [0, 1], [0, peak * 1.1], [0, 0.25, 0.5, 0.75, 1],
                           (v) => fmt(v, 3));
    const d = curve.p.map((p, i) => `${i ? "L" : "M"}${x(p).toFixed(1)},${y(curve.w[i]).toFixed(1)}`);
    svg("path", { class: "kernel-curve", d: d.join("") }, node);
    // One dot per histogram bin at the bin's centre; its area is proportional to the count.
    const { edges, counts } = histogram;
    const most = Math.max(1, ...counts);
    counts.forEach((count, i) => {
      if (count === 0) return;
      const p = (edges[i] + edges[i + 1]) / 2;
      const dot = svg("circle", { class: "position", cx: x(p), cy: y(curve.at_bins[i]),
                                  r: 2 + 10 * Math.sqrt(count / most) }, node);
      svg("title", {}, dot).textContent = `${fmt(count)} problems near p=${fmt(p, 3)}`;
    });
  }

  function drawZones(node, items) {
    if (items.length === 0) {
      clear(node);
      emptyNote(node, "no history yet: it starts with the first outcomes");
      return;
    }
    const domain = stepDomain(items.map((item) => item.step));
    const { x, y } = frame(node, domain, [0, 1], stepTicks(domain),
                           (v) => Math.round(v * 100) + "%");
    // The chart's last point, as counts: what the cards above it must agree with (and what
    // the browser test compares them against).
    node.setAttribute("data-last-zones", JSON.stringify(items[items.length - 1].zones));
    // A single snapshot is drawn across the whole width.
    const points = items.length === 1
      ? [{ ...items[0], step: domain[0] }, { ...items[0], step: domain[1] }] : items;
    const lower = points.map(() => 0);
    for (const zone of ["mastered", "frontier", "intractable", "unseen"]) {
      const upper = points.map((item, i) => {
        const total = ZONES.reduce((sum, z) => sum + item.zones[z], 0) || 1;
        return lower[i] + item.zones[zone] / total;
      });
      const top = points.map((item, i) => `${i ? "L" : "M"}${x(item.step)},${y(upper[i])}`);
      const bottom = points.map((item, i) => `L${x(item.step)},${y(lower[i])}`).reverse();
      svg("path", { class: `zone-area zone-${zone}`, d: top.join("") + bottom.join("") + "Z" },
          node);
      upper.forEach((v, i) => { lower[i] = v; });
    }
  }

  function drawEffective(node, items) {
    if (items.length === 0) {
      clear(node);
      emptyNote(node, "no history yet");
      return;
    }
    const domain = stepDomain(items.map((item) => item.step));
    const top = Math.max(1, ...items.map((i) => i.effective_problems)) * 1.1;
    const { x, y } = frame(node, domain, [0, top], stepTicks(domain), compact);
    const d = items.map((item, i) => `${i ? "L" : "M"}${x(item.step)},${y(item.effective_problems)}`);
    svg("path", { class: "effective-line", d: d.join("") }, node);
    for (const item of items.slice(-1)) {
      svg("circle", { class: "position", cx: x(item.step), cy: y(item.effective_problems), r: 3 },
          node);
    }
  }

  function card(parent, label, value, sub, zone, count) {
    const attrs = zone ? { class: "card", "data-zone": zone, "data-count": count } : { class: "card" };
    const node = html("div", attrs, parent);
    const title = html("div", { class: "label" }, node);
    if (zone) html("span", { class: `swatch zone-${zone}` }, title);
    title.appendChild(document.createTextNode(label));
    html("div", { class: "value" }, node, value);
    if (sub) html("div", { class: "sub" }, node, sub);
  }

  function drawCards(overview) {
    const node = document.getElementById("cards");
    clear(node);
    const d = overview.difficulty;
    card(node, "problems", fmt(d.problems));
    card(node, "step", fmt(overview.run.step));
    for (const zone of ZONES) {
      const share = d.problems ? (100 * d.zones[zone]) / d.problems : 0;
      card(node, zone, fmt(d.zones[zone]), share.toFixed(1) + "%", zone, d.zones[zone]);
    }
    card(node, "mean pass rate", fmt(overview.mean_pass_rate));
    card(node, "mean weight", fmt(d.mean_weight, 4));
    const share = d.problems ? (100 * d.effective_problems) / d.problems : 0;
    card(node, "effective problems", compact(d.effective_problems), share.toFixed(1) + "% of all");
  }

  function fillTable(id, rows, columns) {
    const body = document.querySelector(`#${id} tbody`);
    clear(body);
    if (rows.length === 0) {
      html("td", { colspan: String(columns.length + 3) }, html("tr", {}, body), "none yet");
    }
    for (const row of rows) {
      const tr = html("tr", {}, body);
      const id = html("td", { class: "id", title: row.problem_id }, tr);
      html("a", { href: problemHref(run, row.problem_id) }, id, row.problem_id);
      promptCell(tr, row);
      html("td", { class: "answer", title: row.answer ?? "" }, tr, row.answer ?? "–");
      for (const column of columns) html("td", {}, tr, column(row));
    }
  }

  function drawSettings(runView) {
    const node = document.getElementById("settings");
    clear(node);
    const e = runView.estimator;
    const rows = [
      ["dataset", runView.dataset],
      ["kernel", `w(p) = p^${runView.kernel.alpha} (1-p)^${runView.kernel.beta}`],
      ["estimator", e.kind],
      ["Beta prior", `α=${e.prior_alpha}, β=${e.prior_beta}` +
        (e.kind === "posterior" ? "" : " (used for uncertainty only)")],
      ["half-life", e.half_life_steps === null ? "none (counts never decay)"
        : `${e.half_life_steps} steps`],
      ["current step", fmt(runView.step)],
      ["created", new Date(runView.created_at).toLocaleString()],
    ];
    for (const [label, value] of rows) {
      html("dt", {}, node, label);
      html("dd", {}, node, value);
    }
  }

  async function load() {
    const [overview, history] = await Promise.all([
      getJSON(`${base}/overview?bins=${BINS}&top=${TOP}`),
      getJSON(`${base}/history`),
    ]);
    const histogram = overview.difficulty.histogram;
    drawCards(overview);
    drawHistogram(document.getElementById("histogram"), histogram);
    drawKernel(document.getElementById("kernel"), overview.kernel_curve, histogram);
    drawZones(document.getElementById("zones"), history.items);
    drawEffective(document.getElementById("effective"), history.items);
    fillTable("frontier", overview.top_frontier, [
      (r) => fmt(r.pass_rate), (r) => fmt(r.weight, 4), (r) => fmt(r.attempts, 1),
      (r) => fmt(r.last_step),
    ]);
    fillTable("mastered", overview.recently_mastered, [
      (r) => fmt(r.pass_rate), (r) => fmt(r.attempts, 1), (r) => fmt(r.last_step),
    ]);
    drawSettings(overview.run);
  }

  const legend = document.getElementById("zone-legend");
  for (const zone of ZONES) {
    const item = html("span", {}, legend);
    html("span", { class: `swatch zone-${zone}` }, item);
    item.appendChild(document.createTextNode(zone));
  }
  poll(load);
})();
