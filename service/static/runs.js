// The run list at /: one row per run, linking to its dashboard.
"use strict";

(() => {
  const { getJSON, html, clear, fmt, poll } = Paced;

  async function load() {
    const { items } = await getJSON("/v1/runs");
    const body = document.querySelector("#runs tbody");
    clear(body);
    if (items.length === 0) {
      html("td", { colspan: "6" }, html("tr", {}, body), "no runs yet");
    }
    for (const run of items) {
      const row = html("tr", {}, body);
      const link = html("a", { href: "/runs/" + encodeURIComponent(run.name) }, null, run.name);
      html("td", {}, row).appendChild(link);
      html("td", {}, row, run.dataset);
      html("td", {}, row, fmt(run.step));
      html("td", {}, row, `${run.kernel.alpha}, ${run.kernel.beta}`);
      html("td", {}, row, run.estimator.kind);
      html("td", {}, row, new Date(run.created_at).toLocaleString());
    }
  }

  poll(load);
})();
