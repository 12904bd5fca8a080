// One problem of a run (/runs/RUN/problems/ID): its text, current stats and outcomes per step.
"use strict";

(() => {
  const { getJSON, svg, html, clear, fmt, poll } = Paced;
  const { frame, emptyNote, stepDomain, stepTicks, linePath } = PacedCharts;

  // /runs/RUN/problems/ID... (a problem id may hold slashes, encoded or not)
  const parts = window.location.pathname.split("/");
  const run = decodeURIComponent(parts[2] || "");
  const problemId = parts.slice(4).map(decodeURIComponent).join("/");
  const runLink = document.getElementById("run-link");
  runLink.textContent = run;
  runLink.href = "/runs/" + encodeURIComponent(run);
  document.getElementById("problem-id").textContent = problemId;
  document.title = `paced · ${run} · ${problemId}`;
  const path = `/v1/runs/${encodeURIComponent(run)}/problem-history/` +
    problemId.split("/").map(encodeURIComponent).join("/");

  function card(parent, label, value, zone) {
    const node = html("div", { class: "card" }, parent);
    const title = html("div", { class: "label" }, node);
    if (zone) html("span", { class: `swatch zone-${zone}` }, title);
    title.appendChild(document.createTextNode(label));
    html("div", { class: "value" }, node, value);
  }

  function drawCards(stats) {
    const node = document.getElementById("cards");
    clear(node);
    card(node, "zone", stats.zone, stats.zone);
    card(node, "pass rate", fmt(stats.pass_rate));
    card(node, "weight", fmt(stats.weight, 4));
    card(node, "attempts", fmt(stats.attempts));
    card(node, "successes", fmt(stats.successes));
    card(node, "last step", fmt(stats.last_step));
  }

  function drawChart(node, steps) {
    const stepped = steps.filter((s) => s.step !== null);
    if (stepped.length === 0) {
      clear(node);
      emptyNote(node, steps.length ? "outcomes without steps only" : "no outcomes yet");
      return;
    }
    const domain = stepDomain(stepped.map((s) => s.step));
    const { x, y } = frame(node, domain, [0, 1], stepTicks(domain), (v) => fmt(v, 2));
    let attempts = 0, successes = 0;
    const cumulative = stepped.map((s) => {
      attempts += s.attempts;
      successes += s.successes;
      return [s.step, successes / attempts];
    });
    svg("path", { class: "effective-line", d: linePath(cumulative, x, y) }, node);
    const most = Math.max(...stepped.map((s) => s.attempts));
    for (const s of stepped) {
      const dot = svg("circle", { class: "position", cx: x(s.step), cy: y(s.pass_rate),
                                  r: 2 + 6 * Math.sqrt(s.attempts / most) }, node);
      svg("title", {}, dot).textContent =
        `step ${s.step}: ${s.successes}/${s.attempts} = ${fmt(s.pass_rate)}`;
    }
  }

  function drawSteps(steps) {
    const body = document.querySelector("#steps tbody");
    clear(body);
    if (steps.length === 0) html("td", { colspan: "6" }, html("tr", {}, body), "no outcomes yet");
    for (const s of [...steps].reverse()) {
      const row = html("tr", {}, body);
      html("td", {}, row, s.step === null ? "none" : fmt(s.step));
      html("td", {}, row, fmt(s.attempts));
      html("td", {}, row, fmt(s.successes));
      html("td", {}, row, fmt(s.pass_rate));
      html("td", {}, row, fmt(s.outcomes));
      html("td", {}, row, new Date(s.last_accepted_at).toLocaleString());
    }
  }

  async function load() {
    const data = await getJSON(path);
    drawCards(data.stats);
    document.getElementById("prompt").textContent = data.problem.prompt;
    document.getElementById("answer").textContent = data.problem.answer ?? "(none)";
    drawChart(document.getElementById("pass-rates"), data.steps);
    drawSteps(data.steps);
    document.getElementById("partial").hidden = data.complete;
  }

  poll(load);
})();
