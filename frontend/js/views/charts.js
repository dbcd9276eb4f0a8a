// Two small SVG charts, enough for the dashboard: horizontal bars and a line. Labels are SVG text nodes.

import { svg } from "../dom.js";

export function barChart(items, { format = String } = {}) {
  const rowHeight = 24;
  const labelWidth = 130;
  const width = 480;
  const max = Math.max(1, ...items.map((i) => Number(i.value) || 0));
  const height = Math.max(rowHeight, items.length * rowHeight);
  return svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img" },
    items.map((item, index) => {
      const y = index * rowHeight;
      const barWidth = ((Number(item.value) || 0) / max) * (width - labelWidth - 70);
      const bar = svg("rect", {
        class: ["bar", item.cls],
        x: labelWidth,
        y: y + 4,
        width: Math.max(1, barWidth),
        height: rowHeight - 8,
        rx: 3,
        "data-testid": "chart-bar",
        onclick: item.onClick,
      });
      bar.append(svg("title", {}, `${item.label}: ${format(item.value)}`));
      return svg(
        "g",
        {},
        svg("text", { x: labelWidth - 6, y: y + rowHeight / 2 + 4, "text-anchor": "end" }, String(item.label).slice(0, 20)),
        bar,
        svg("text", { x: labelWidth + barWidth + 6, y: y + rowHeight / 2 + 4 }, format(item.value)),
      );
    }),
  );
}

export function lineChart(points, { format = String } = {}) {
  const width = 480;
  const height = 160;
  const pad = 24;
  const max = Math.max(1, ...points.map((p) => p.value));
  const step = points.length > 1 ? (width - 2 * pad) / (points.length - 1) : 0;
  const xy = points.map((p, i) => [pad + i * step, height - pad - (p.value / max) * (height - 2 * pad)]);
  const labelEvery = Math.ceil(points.length / 8);
  return svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img" },
    svg("polyline", { class: "line", points: xy.map(([x, y]) => `${x},${y}`).join(" ") }),
    points.map((p, i) =>
      svg(
        "g",
        {},
        svg("circle", { cx: xy[i][0], cy: xy[i][1], r: 4, class: "bar", onclick: p.onClick }, svg("title", {}, `${p.label}: ${format(p.value)}`)),
        i % labelEvery === 0 ? svg("text", { x: xy[i][0], y: height - 6, "text-anchor": "middle" }, p.label) : null,
      ),
    ),
    svg("text", { x: 2, y: pad - 8 }, format(max)),
  );
}
