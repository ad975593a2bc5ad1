// The hourly timeline: one SVG bar an hour (empty hours drawn as gaps), a label every few hours.

const SVG = "http://www.w3.org/2000/svg";
const HOUR = 3600 * 1000;

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function drawTimeline(svg, buckets) {
  svg.replaceChildren();
  if (buckets.length === 0) {
    svg.append(el("text", { x: 8, y: 20, class: "empty" }, "No entries for these filters"));
    return;
  }
  const counts = new Map(buckets.map((b) => [Date.parse(b.start), b.count]));
  const first = Math.min(...counts.keys());
  const last = Math.max(...counts.keys());
  const hours = Math.round((last - first) / HOUR) + 1;
  const max = Math.max(...counts.values());
  const width = 600, height = 120, left = 24, bottom = 18, top = 6;
  const step = (width - left - 4) / hours;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.append(el("text", { x: left - 4, y: top + 8, class: "axis", "text-anchor": "end" }, String(max)));
  svg.append(el("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "base" }));
  const every = Math.max(1, Math.ceil(hours / 8));
  for (let i = 0; i < hours; i++) {
    const at = first + i * HOUR;
    const count = counts.get(at) ?? 0;
    const h = ((height - bottom - top) * count) / max;
    const x = left + i * step;
    if (count > 0) {
      const bar = el("rect", { x: x + 1, y: height - bottom - h, width: Math.max(step - 2, 1), height: h, class: "bar" });
      const when = new Date(at).toISOString().slice(0, 13).replace("T", " ");
      bar.append(el("title", {}, `${when}:00 UTC: ${count} ${count === 1 ? "entry" : "entries"}`));
      svg.append(bar);
    }
    if (i % every === 0) {
      const label = new Date(at).toISOString().slice(11, 16);
      svg.append(el("text", { x: x + step / 2, y: height - 4, class: "axis", "text-anchor": "middle" }, label));
    }
  }
}
