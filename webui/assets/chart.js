// Hand-drawn SVG line charts: no library, no CDN.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten (or of
// 1024 for bytes), so the axis labels read well.
function niceMax(v, binary) {
  if (!(v > 0)) return 1;
  const base = binary ? 1024 : 1000;
  let p = 1;
  while (v / p >= base) p *= base;
  const r = v / p;
  const steps = binary ? [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] : [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
  for (const m of steps) if (r <= m) return m * p;
  return r * p;
}

// lineChart draws series over a time window into fig.
//   opts.title, opts.windowMs, opts.now (ms), opts.fmt (value -> text),
//   opts.binary (bytes axis), opts.series: [{name, cls: 'in'|'out'|'bad', points: [[tMs, v]...]}]
export function lineChart(fig, opts) {
  // Drawn at the figure's own width, so that text is never scaled.
  const W = Math.max(260, Math.round(fig.clientWidth - 36) || 560), H = 190, L = 66, R = 10, T = 10, B = 24;
  fig.replaceChildren();
  const cap = document.createElement('figcaption');
  cap.append(opts.title);
  const legend = document.createElement('span');
  legend.className = 'legend';
  let max = 0;
  for (const s of opts.series) {
    for (const [, v] of s.points) if (v > max) max = v;
    const k = document.createElement('span');
    k.className = 'k-' + s.cls;
    const last = s.points.length ? s.points[s.points.length - 1][1] : 0;
    k.textContent = `${s.name} ${opts.fmt(last)}`;
    k.dataset.series = s.name;
    k.dataset.value = String(last);
    legend.append(k);
  }
  cap.append(legend);
  fig.append(cap);
  const top = niceMax(Math.max(max, opts.minTop || 0), opts.binary);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': `${opts.title}: ${opts.series.map((s) => s.name + ' now ' + opts.fmt(s.points.length ? s.points[s.points.length - 1][1] : 0)).join(', ')}; peak ${opts.fmt(max)}` });
  const x = (t) => L + (W - L - R) * (1 - (opts.now - t) / opts.windowMs);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    el('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid-line' }, svg);
    el('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, svg).textContent = opts.fmt(v);
  }
  // Five ticks back from now, in seconds or minutes.
  const secs = opts.windowMs / 1000;
  for (let i = 0; i <= 5; i++) {
    const ago = (secs * i) / 5;
    const label = i === 0 ? 'now' : secs >= 300 ? `−${Math.round(ago / 60)} min` : secs >= 120 ? `−${(ago / 60).toFixed(1)} min` : `−${Math.round(ago)} s`;
    el('text', { x: x(opts.now - ago * 1000), y: H - 6, 'text-anchor': i === 0 ? 'end' : i === 5 ? 'start' : 'middle', class: 'axis' }, svg)
      .textContent = label;
  }
  for (const s of opts.series) {
    const pts = s.points.filter(([t]) => opts.now - t <= opts.windowMs);
    if (!pts.length) continue;
    const d = pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    if (s.cls === 'in') {
      el('polygon', { points: `${x(pts[0][0]).toFixed(1)},${y(0)} ${d} ${x(pts[pts.length - 1][0]).toFixed(1)},${y(0)}`, class: 'a-in' }, svg);
    }
    el('polyline', { points: d, class: 's-' + s.cls }, svg);
  }
  fig.append(svg);
  if (opts.note) fig.append(Object.assign(document.createElement('p'), { className: 'note', textContent: opts.note }));
}

// spark draws a small two-series chart (in and out) without axes, scaled
// to its own peak, and returns the SVG element.
export function spark(inVals, outVals, label) {
  const W = 260, H = 54, P = 3;
  const n = Math.max(inVals.length, outVals.length, 2);
  const max = Math.max(1, ...inVals, ...outVals);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label });
  el('line', { x1: 0, x2: W, y1: H - P, y2: H - P, class: 'grid-line' }, svg);
  for (const [vals, cls] of [[inVals, 'in'], [outVals, 'out']]) {
    if (!vals.length) continue;
    const off = n - vals.length;
    const d = vals.map((v, i) => `${((W * (i + off)) / (n - 1)).toFixed(1)},${(H - P - ((H - 2 * P) * v) / max).toFixed(1)}`).join(' ');
    el('polyline', { points: d, class: 's-' + cls }, svg);
  }
  return svg;
}
