// Shared by the dashboard pages: authenticated JSON fetches, SVG helpers, number formats.
"use strict";

const Paced = (() => {
  const TOKEN_KEY = "paced-token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 5000;

  // A ?token= in the address moves to sessionStorage and out of the URL (and history).
  function captureToken() {
    const url = new URL(window.location.href);
    const token = url.searchParams.get("token");
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      url.searchParams.delete("token");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
  }

  async function getJSON(path) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    const response = await fetch(path, { headers });
    if (!response.ok) {
      let detail = response.statusText;
      try {
        const body = await response.json();
        if (typeof body.detail === "string") detail = body.detail;
        // A 422 lists what is wrong and where: "runs: runs are on different datasets ..."
        else if (Array.isArray(body.detail) && body.detail.length) {
          detail = body.detail.map((e) => `${(e.loc || []).slice(-1)[0]}: ${e.msg}`).join("; ");
        }
      } catch (_) { /* not JSON: keep the status text */ }
      const hint = response.status === 401 ? " (open this page with ?token=...)" : "";
      throw new Error(`${response.status} ${detail}${hint}`);
    }
    return response.json();
  }

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function html(tag, attrs, parent, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text; // never innerHTML: ids are user data
    if (parent) parent.appendChild(node);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function fmt(value, digits = 3) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return Number(value).toFixed(digits);
  }

  function compact(value) {
    if (value >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (value >= 1e4) return (value / 1e3).toFixed(0) + "k";
    return fmt(Math.round(value));
  }

  function setStatus(text, isError) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.classList.toggle("error", Boolean(isError));
  }

  // Poll forever; each round redraws from fresh JSON. Errors show in the status line.
  function poll(load) {
    const round = async () => {
      try {
        await load();
        document.body.dataset.state = "ready";
        setStatus("updated " + new Date().toLocaleTimeString() + " · refreshes every 5 s");
      } catch (error) {
        document.body.dataset.state = "error";
        setStatus(String(error.message || error), true);
      }
    };
    round();
    setInterval(round, REFRESH_MS);
    return round; // to redraw at once, e.g. when a filter changes
  }

  const ZONES = ["unseen", "intractable", "frontier", "mastered"];

  // A stacked bar of zone shares; the title spells the shares out.
  function zoneBar(parent, zones) {
    const total = ZONES.reduce((sum, z) => sum + zones[z], 0) || 1;
    const shares = ZONES.map((z) => [z, (100 * zones[z]) / total]);
    const bar = html("div", { class: "zone-bar",
      title: shares.map(([z, s]) => `${z} ${s.toFixed(1)}%`).join(" · ") }, parent);
    for (const [zone, share] of shares) {
      if (share > 0) {
        html("span", { class: `zone-seg zone-${zone}`, style: `width:${share.toFixed(2)}%`,
                       "data-zone": zone }, bar);
      }
    }
    return bar;
  }

  function problemHref(run, problemId) {
    return `/runs/${encodeURIComponent(run)}/problems/${encodeURIComponent(problemId)}`;
  }

  // A table cell with the prompt on one truncated line: the whole preview on hover, and
  // wrapped in place on click.
  function promptCell(row, item) {
    const text = item.prompt + (item.prompt_truncated ? " …" : "");
    const cell = html("td", { class: "prompt", title: text }, row, text);
    cell.addEventListener("click", () => cell.classList.toggle("expanded"));
    return cell;
  }

  function ago(iso) {
    const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (seconds < 90) return `${Math.round(seconds)} s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
    return `${Math.round(seconds / 86400)} d ago`;
  }

  captureToken();
  return { getJSON, svg, html, clear, fmt, compact, poll, ZONES, zoneBar, problemHref,
           promptCell, ago };
})();
