"""The page's charts, drawn in the browser: two small Vue templates (SVG) that ipyvue compiles on the page.

Python sends data, the browser draws. A time chart receives its fixed parts once (title, axes, line styles,
legend, observed dots) and then, each Step, only the months it has not yet shown (`tail`); the network view
receives its layout once and then only the colours, widths and titles of the sampled people. Nothing here
needs a CDN or a package of its own: the templates ship in this file and ipyvue (already on the page for
Solara) compiles them, so the page stays offline.

Every text (titles, legend labels, province names) reaches the page through Vue's {{ }} or attribute
bindings, which set text and attribute values, never markup: no file can put an element into the page.
"""

from __future__ import annotations

import ipyvue
import traitlets

TIME_CHART = """
<template>
<svg class="egov-chart" :data-month="month" :data-title="spec.title" viewBox="0 0 600 400" width="100%"
     style="display:block;font-family:DejaVu Sans,Arial,sans-serif">
  <g class="egov-title"><title>{{ spec.title }}</title>
    <text v-for="(line, i) in titleLines" :key="'t' + i" x="321" :y="18 + 16 * i" text-anchor="middle"
          font-size="13.5">{{ line }}</text>
  </g>
  <g font-size="11" fill="#222">
    <g v-for="t in xticks" :key="'x' + t">
      <line :x1="X(t)" :x2="X(t)" :y1="T" :y2="B" stroke="#b0b0b0" stroke-opacity="0.3"/>
      <text :x="X(t)" :y="B + 14" text-anchor="middle">{{ t }}</text>
    </g>
    <g v-for="t in yticks" :key="'y' + t">
      <line :x1="L" :x2="R" :y1="Y(t)" :y2="Y(t)" stroke="#b0b0b0" stroke-opacity="0.3"/>
      <text :x="L - 4" :y="Y(t) + 3.5" text-anchor="end">{{ t.toFixed(decimals) }}</text>
    </g>
    <text :transform="'translate(13,' + (T + B) / 2 + ') rotate(-90)'" text-anchor="middle">{{ spec.ylabel }}</text>
    <text :x="(L + R) / 2" :y="B + 27" text-anchor="middle" class="egov-xlabel">{{ spec.xlabel }}</text>
  </g>
  <rect :x="L" :y="T" :width="R - L" :height="B - T" fill="none" stroke="#222" stroke-width="0.8"/>
  <path v-for="(s, i) in spec.series" :key="'s' + i" :d="path(i)" fill="none" :stroke="s.color"
        :stroke-width="s.width" :stroke-opacity="s.alpha" :stroke-dasharray="s.dash"
        stroke-linejoin="round" class="egov-line"/>
  <circle v-for="(p, i) in spec.points" :key="'p' + i" :cx="X(p[0])" :cy="Y(p[1])" r="3.4" :fill="p[2]"
          stroke="#000" stroke-width="0.8" class="egov-observed"/>
  <text v-for="(p, i) in spec.points" :key="'pl' + i" :x="X(p[0]) + 6" :y="Y(p[1]) - 5" font-size="9"
        class="egov-observed-label">{{ p[3] }}</text>
  <g :transform="'translate(' + legendAt[0] + ',' + legendAt[1] + ')'" font-size="10.5" class="egov-legend">
    <rect x="0" y="0" :width="legendW" :height="legendH" fill="#fff" fill-opacity="0.85"
          stroke="#ccc" rx="3"/>
    <g v-for="(s, i) in legend" :key="'l' + i" :transform="'translate(6,' + (11 + 14 * i) + ')'">
      <circle v-if="s.dot" cx="10" cy="0" r="3.4" fill="#fff" stroke="#000" stroke-width="0.8"/>
      <line v-else x1="0" x2="20" y1="0" y2="0" :stroke="s.color" :stroke-width="s.width"
            :stroke-opacity="s.alpha" :stroke-dasharray="s.dash"/>
      <title>{{ s.label }}</title><text x="26" y="3.5">{{ cut(s.label, LEGEND_CHARS) }}</text>
    </g>
  </g>
</svg>
</template>
<script>
module.exports = {
  data() { return { ys: [], L: 60, R: 582, B: 362, LEGEND_CHARS: 48 }; },
  created() { this.take(this.tail); },
  watch: { tail(t) { this.take(t); } },
  methods: {
    // new months are appended; a tail from 0 (a new model or a new province) replaces what was shown
    take(t) {
      if (!t || !t.y) return;
      const keep = t.from > 0 && this.ys.length === t.y.length ? t.from : 0;
      this.ys = t.y.map((a, i) => (keep ? this.ys[i].slice(0, keep) : []).concat(a));
    },
    CUT_METHOD
    X(x) { return this.L + (x - this.spec.xlim[0]) / (this.spec.xlim[1] - this.spec.xlim[0]) * (this.R - this.L); },
    Y(y) { return this.B - y / this.ylim * (this.B - this.T); },
    path(i) {
      const y = this.ys[i] || [], s = this.spec;
      let d = "", pen = "M";
      for (let k = 0; k < y.length; k++) {
        if (y[k] === null) { pen = "M"; continue; }
        d += pen + this.X(s.x0 + k * s.dx).toFixed(1) + "," + this.Y(y[k]).toFixed(1);
        pen = "L";
      }
      return d;
    },
  },
  computed: {
    // the y axis grows with the data up to spec.ymax, so low shares stay readable
    ylim() {
      let top = this.spec.top;
      for (const y of this.ys) for (const v of y) if (v !== null && v > top) top = v;
      return Math.min(this.spec.ymax, Math.max(0.05, top * 1.15));
    },
    step() {
      const raw = this.ylim / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
      return [1, 2, 2.5, 5, 10].map(f => f * mag).find(s => s >= raw * 0.999);
    },
    decimals() { return Math.max(0, -Math.floor(Math.log10(this.step) + 1e-9) + (this.step / Math.pow(10, Math.floor(Math.log10(this.step) + 1e-9)) === 2.5 ? 1 : 0)); },
    yticks() {
      const out = [];
      for (let k = 0; k * this.step <= this.ylim * 1.0001; k++) out.push(+(k * this.step).toFixed(6));
      return out;
    },
    xticks() {
      const out = [];
      for (let t = Math.ceil(this.spec.xlim[0] / 5) * 5; t <= this.spec.xlim[1]; t += 5) out.push(t);
      return out;
    },
    legend() {
      const rows = this.spec.series.map(s => ({ ...s, dot: false }));
      if (this.spec.points.length) rows.push({ label: this.spec.points_label, dot: true });
      return rows;
    },
    // a label longer than LEGEND_CHARS (a long province name) is cut, so the legend stays inside the plot
    legendW() { return 34 + 6.1 * Math.max(...this.legend.map(s => Math.min(s.label.length, this.LEGEND_CHARS))); },
    legendH() { return 8 + 14 * this.legend.length; },
    // a long title (a long province name) wraps onto a second line, cut with an ellipsis beyond it (the whole title
    // shows on hover); the plot starts below it
    titleLines() {
      const width = 76, lines = [];
      let line = "";
      for (const w of String(this.spec.title).split(" ")) {
        if (line && (line + " " + w).length > width) { lines.push(line); line = w; } else line = line ? line + " " + w : w;
      }
      lines.push(line);
      const cut = l => l.slice(0, width - 1) + "\u2026";
      const shown = lines.slice(0, 2).map(l => (l.length > width ? cut(l) : l));
      if (lines.length > 2) shown[1] = cut(shown[1]);
      return shown;
    },
    T() { return 12 + 16 * this.titleLines.length; },
    // the legend goes in the corner that hides the fewest observed dots (with their labels), then the fewest
    // points of the lines drawn so far, the chart's own choice first among equals (matplotlib's loc="best"): a
    // corner chosen for the dots alone hid the early lines of the supply index. It can move as lines are drawn.
    legendAt() {
      const w = this.legendW, h = this.legendH, left = this.L + 6, right = this.R - 6 - w;
      const top = this.T + 6, bottom = this.B - 6 - h, s = this.spec;
      const corners = s.legend === "upper right"
        ? [[right, top], [left, top], [right, bottom], [left, bottom]]
        : [[left, top], [right, top], [left, bottom], [right, bottom]];
      const dots = ([x, y]) => s.points.filter(p => {
        const px = this.X(p[0]), py = this.Y(p[1]);
        return px >= x - 4 && px <= x + w + 4 && py >= y - 12 && py <= y + h + 4;
      }).length;
      const lines = ([x, y]) => {
        let n = 0;
        for (const ys of this.ys) ys.forEach((v, k) => {
          if (v === null) return;
          const px = this.X(s.x0 + k * s.dx), py = this.Y(v);
          if (px >= x && px <= x + w && py >= y && py <= y + h) n++;
        });
        return n;
      };
      let best = corners[0], least = [Infinity, Infinity];
      for (const c of corners) {
        const hidden = [dots(c), lines(c)];
        if (hidden[0] < least[0] || (hidden[0] === least[0] && hidden[1] < least[1])) [best, least] = [c, hidden];
      }
      return best;
    },
  },
};
</script>
"""

NETWORK = """
<template>
<svg class="egov-chart egov-network" :data-month="month" :viewBox="'0 0 600 ' + height" width="100%"
     style="display:block;font-family:DejaVu Sans,Arial,sans-serif">
  <text x="300" y="18" text-anchor="middle" font-size="13">{{ colours.title }}</text>
  <g v-for="(p, i) in places.panels" :key="'p' + i" :transform="cell(i)">
    <g><title>{{ colours.panels[i].name }}</title>
      <text x="150" y="10" text-anchor="middle" font-size="11">{{ cut(colours.panels[i].name, 46) }}</text>
    </g>
    <text x="150" y="24" text-anchor="middle" font-size="11">{{ colours.panels[i].line }}</text>
    <line v-for="(s, j) in p.servants" :key="'l' + j" :x1="px(0)" :y1="py(0)" :x2="px(s[0])" :y2="py(s[1])"
          stroke="#6a3d9a" stroke-opacity="0.5" :stroke-width="colours.panels[i].pull"/>
    <line v-for="(c, j) in p.citizens" :key="'c' + j" :x1="px(p.servants[c[4]][0])" :y1="py(p.servants[c[4]][1])"
          :x2="px(c[0])" :y2="py(c[1])" :stroke="colours.panels[i].genuine[j] ? '#2ca02c' : '#bbbbbb'"
          :stroke-width="colours.panels[i].genuine[j] ? 1.4 : 0.7"/>
    <g v-for="(c, j) in p.citizens" :key="'m' + j">
      <rect v-if="c[2]" :x="px(c[0]) - 4.2" :y="py(c[1]) - 4.2" width="8.4" height="8.4" class="egov-citizen"
            :fill="colours.panels[i].citizens[j]" :stroke="c[3] ? '#000' : '#777'" :stroke-width="c[3] ? 2.2 : 0.6"/>
      <circle v-else :cx="px(c[0])" :cy="py(c[1])" r="4.6" class="egov-citizen"
              :fill="colours.panels[i].citizens[j]" :stroke="c[3] ? '#000' : '#777'" :stroke-width="c[3] ? 2.2 : 0.6"/>
    </g>
    <path v-for="(s, j) in p.servants" :key="'s' + j" :d="diamond(px(s[0]), py(s[1]), 6.5)" class="egov-servant"
          :fill="colours.panels[i].servants[j]" stroke="#333" stroke-width="0.7"/>
    <path :d="star(px(0), py(0), 14)" :fill="colours.panels[i].leader" stroke="#6a3d9a" stroke-width="1"/>
  </g>
  <g :transform="cell(places.panels.length, 10)"
     font-size="11" class="egov-legend">
    <g v-for="(e, k) in places.legend" :key="'k' + k" :transform="'translate(40,' + (16 * k) + ')'">
      <path v-if="e.shape === 'star'" :d="star(8, 0, 8)" :fill="e.fill" :stroke="e.stroke"/>
      <path v-else-if="e.shape === 'diamond'" :d="diamond(8, 0, 5)" :fill="e.fill" :stroke="e.stroke"/>
      <rect v-else-if="e.shape === 'square'" x="4" y="-4" width="8" height="8" :fill="e.fill" :stroke="e.stroke"/>
      <line v-else-if="e.shape === 'line'" x1="0" x2="16" y1="0" y2="0" :stroke="e.stroke" stroke-width="1.4"/>
      <circle v-else cx="8" cy="0" r="4.2" :fill="e.fill" :stroke="e.stroke" :stroke-width="e.width || 0.8"/>
      <text x="22" y="3.5">{{ e.label }}</text>
    </g>
  </g>
</svg>
</template>
<script>
module.exports = {
  computed: {
    // two panels a row, three (drawn at 2/3 size) when more than four provinces would make the card too tall
    cols() { return this.places.panels.length > 4 ? 3 : 2; },
    height() { return 30 + 450 / this.cols * Math.ceil((this.places.panels.length + 1) / this.cols); },
  },
  methods: {
    cell(i, dy = 0) {
      const c = this.cols, size = 600 / c;
      return `translate(${size * (i % c)},${30 + dy + 450 / c * Math.floor(i / c)}) scale(${2 / c})`;
    },
    // a panel's drawing area: the square [-2.6, 2.6]^2 under its two title lines
    px(x) { return 150 + x / 2.6 * 96; },
    py(y) { return 126 - y / 2.6 * 96; },
    CUT_METHOD
    diamond(x, y, r) { return `M${x},${y - r}L${x + r},${y}L${x},${y + r}L${x - r},${y}Z`; },
    star(x, y, r) {
      let d = "";
      for (let k = 0; k < 10; k++) {
        const a = -Math.PI / 2 + k * Math.PI / 5, q = k % 2 ? r * 0.4 : r;
        d += (k ? "L" : "M") + (x + q * Math.cos(a)).toFixed(1) + "," + (y + q * Math.sin(a)).toFixed(1);
      }
      return d + "Z";
    },
  },
};
</script>
"""


# shortening a text from a file to n characters with an ellipsis (the whole text goes in a <title>, shown on hover):
# one method, put into both templates' methods
CUT = """    cut(text, n) { text = String(text); return text.length > n ? text.slice(0, n - 1) + "\\u2026" : text; },"""
TIME_CHART = TIME_CHART.replace("    CUT_METHOD", CUT)
NETWORK = NETWORK.replace("    CUT_METHOD", CUT)


class TimeChartWidget(ipyvue.VueTemplate):
    template = traitlets.Unicode(TIME_CHART).tag(sync=True)
    spec = traitlets.Dict().tag(sync=True)  # sent once: title, axes, line styles, observed dots
    tail = traitlets.Dict().tag(sync=True)  # {"from": month, "y": [[values from that month on] per line]}
    month = traitlets.Int(0).tag(sync=True)


class NetworkWidget(ipyvue.VueTemplate):
    template = traitlets.Unicode(NETWORK).tag(sync=True)
    places = traitlets.Dict().tag(sync=True)  # sent once per model: who is drawn where, the legend
    colours = traitlets.Dict().tag(sync=True)  # each Step: colours, widths and titles
    month = traitlets.Int(0).tag(sync=True)
