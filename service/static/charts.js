// SVG chart scaffolding shared by the run, compare and problem pages: scales, axes, lines.
"use strict";

const PacedCharts = (() => {
  const { svg, clear, fmt } = Paced;
  const W = 480, H = 220;
  const M = { left: 48, right: 12, top: 12, bottom: 30 };
  // One colour per compared run (at most 8 runs are compared), distinct from the zone colours.
  const PALETTE = ["#2b7bb9", "#e07b1a", "#7b4fb8", "#2a9d8f", "#c2185b", "#6d6a2f", "#455a64",
                   "#b8860b"];

  function scale(d0, d1, r0, r1) {
    const span = d1 - d0 || 1;
    return (v) => r0 + ((v - d0) / span) * (r1 - r0);
  }

  // Axes with a few labelled ticks; returns the x and y scales of the plot area.
  function frame(node, xDomain, yDomain, xTicks, yFormat) {
    clear(node);
    const x = scale(xDomain[0], xDomain[1], M.left, W - M.right);
    const y = scale(yDomain[0], yDomain[1], H - M.bottom, M.top);
    for (const t of [0, 0.5, 1]) {
      const v = yDomain[0] + t * (yDomain[1] - yDomain[0]);
      svg("line", { class: "grid-line", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }, node);
      svg("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end" }, node).textContent =
        yFormat(v);
    }
    svg("line", { class: "axis", x1: M.left, x2: W - M.right, y1: y(yDomain[0]),
                  y2: y(yDomain[0]) }, node);
    for (const v of xTicks) {
      svg("text", { x: x(v), y: H - M.bottom + 16, "text-anchor": "middle" }, node).textContent =
        fmt(v, 2);
    }
    return { x, y };
  }

  function emptyNote(node, text) {
    svg("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" }, node)
      .textContent = text;
  }

  // Steps of one or more point lists -> an x domain that is never empty.
  function stepDomain(steps) {
    const first = Math.min(...steps), last = Math.max(...steps);
    return first === last ? [first - 1, last + 1] : [first, last];
  }

  function stepTicks(domain) {
    const [a, b] = domain;
    return [a, Math.round((a + b) / 2), b];
  }

  function linePath(points, x, y) {
    return points.map(([px, py], i) => `${i ? "L" : "M"}${x(px).toFixed(1)},${y(py).toFixed(1)}`)
      .join("");
  }

  return { W, H, M, PALETTE, scale, frame, emptyNote, stepDomain, stepTicks, linePath };
})();
