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
  }

  captureToken();
  return { getJSON, svg, html, clear, fmt, compact, poll };
})();
