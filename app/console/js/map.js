// 网格地图: towns, villages or grids coloured by open cases or by their red and yellow cards
// (GET /v1/stats/open), outlines simplified for drawing (GET /v1/grids?simplify=), canvas.
import { api, cached, onChange } from './api.js';
import { clear, debounce, h, LEVEL_LABELS } from './dom.js';

// Simplification per level, in metres: lighter outlines where many are drawn at once.
export const SIMPLIFY = { town: 20, village: 10, grid: 5 };

export const outlineStyle = { color: '#1f5f99', weight: 2, fillColor: '#5dade2', fillOpacity: 0.15 };

export function baseMap(box, options = {}) {
  const L = window.L;
  // No zoom animation: thousands of polygons redraw once, and a page left mid-animation leaves
  // no transition behind on a removed map.
  const map = L.map(box, {
    preferCanvas: true, attributionControl: false, zoomAnimation: false, fadeAnimation: false, ...options,
  });
  const tiles = document.body.dataset.tileUrl;
  if (tiles) L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
  return map;
}

const OPEN_RAMP = ['#f7fbff', '#c6dbef', '#6baed6', '#2171b5', '#08306b'];

// Class breaks of a ramp: class i (1..n-1) holds counts up to ceil(max·i/(n-1)); 0 is class 0.
export function rampBreaks(max, n) {
  const breaks = [];
  let last = 0;
  for (let i = 1; i < n && last < max; i += 1) {
    last = Math.max(last + 1, Math.ceil((max * i) / (n - 1)));
    breaks.push(last);
  }
  return breaks;
}

export function rampColour(value, max, ramp = OPEN_RAMP) {
  if (!value) return ramp[0];
  const breaks = rampBreaks(max, ramp.length);
  const i = breaks.findIndex((upTo) => value <= upTo);
  return ramp[i < 0 ? ramp.length - 1 : i + 1];
}

export function backdrop(map) {
  // Town outlines under a layer of points or circles, so a place can be read.
  cached(`/v1/grids?level=town&simplify=${SIMPLIFY.town}`).then((towns) => {
    if (!map.getContainer().isConnected) return;
    window.L.geoJSON(towns, { style: { color: '#7a8ea3', weight: 1.2, fillColor: '#ffffff', fillOpacity: 0.6 }, interactive: false }).addTo(map).bringToBack();
  }).catch(() => {});
}

function slaColour(row) {
  if (!row || !row.open) return '#eef3f7';
  if (row.overdue) return row.overdue / row.open > 0.2 ? '#b71c1c' : '#e53935';
  if (row.warning) return '#fbc02d';
  return '#66bb6a';
}

export function popupContent(title, lines) {
  return h('div', { class: 'popup' }, h('strong', { text: title }), lines.map((l) => h('div', { text: l })));
}

export function renderMap(main) {
  const state = { level: 'village', colour: 'open' };
  const levelSelect = h('select', { name: 'level', 'aria-label': '层级' },
    ['town', 'village', 'grid'].map((l) => h('option', { value: l, text: LEVEL_LABELS[l] })));
  levelSelect.value = state.level;
  const colourSelect = h('select', { name: 'colour', 'aria-label': '着色' },
    h('option', { value: 'open', text: '按在办案件数' }), h('option', { value: 'sla', text: '按时限状态（红/黄牌）' }));
  const message = h('p', { class: 'error', role: 'alert' });
  const summary = h('span', { class: 'total', testid: 'map-summary' });
  const legend = h('div', { class: 'legend', testid: 'map-legend' });
  const box = h('div', { class: 'big-map', testid: 'grid-map' });
  main.append(
    h('div', { class: 'page-head' }, h('h2', { text: '网格地图' }), summary),
    h('div', { class: 'filters' }, h('label', { class: 'filter' }, '层级', levelSelect), h('label', { class: 'filter' }, '着色', colourSelect)),
    message, h('div', { class: 'map-wrap' }, box, legend));
  if (!window.L) {
    message.textContent = '地图组件未加载';
    return () => {};
  }
  const map = baseMap(box);
  map.setView([23.02, 113.1], 12);
  let layer = null;
  let fitted = false;
  let alive = true; // false once the page is left: late answers draw nothing
  let moved = false; // the user panned or zoomed: keep their view
  map.on('dragstart', () => { moved = true; });
  box.addEventListener('wheel', () => { moved = true; }, { passive: true });
  const resized = new ResizeObserver(() => {
    if (!alive) return;
    map.invalidateSize();
    if (layer && !moved) map.fitBounds(layer.getBounds());
  });
  resized.observe(box);

  async function draw() {
    const { level, colour } = state;
    try {
      const [shapes, board] = await Promise.all([
        cached(`/v1/grids?level=${level}&simplify=${SIMPLIFY[level]}`),
        api.get(`/v1/stats/open?by=${level}`),
      ]);
      if (!alive || level !== state.level || colour !== state.colour) return;
      const rows = new Map(board.items.map((r) => [r.code, r]));
      const max = Math.max(1, ...board.items.map((r) => r.open));
      if (layer) layer.remove();
      layer = window.L.geoJSON(shapes, {
        style: (feature) => {
          const row = rows.get(feature.id);
          return {
            color: '#4a6278', weight: level === 'grid' ? 0.5 : 1.2, fillOpacity: 0.75,
            fillColor: colour === 'sla' ? slaColour(row) : rampColour(row && row.open, max),
          };
        },
        onEachFeature: (feature, shape) => {
          shape.on('click', () => {
            const row = rows.get(feature.id) || { open: 0, warning: 0, overdue: 0 };
            shape.bindPopup(popupContent(`${feature.properties.name}（${LEVEL_LABELS[level]}）`, [
              `编码 ${feature.id}`,
              `在办 ${row.open} 件`,
              `预警（黄牌）${row.warning} 件`,
              `超时（红牌）${row.overdue} 件`,
            ])).openPopup();
          });
        },
      }).addTo(map);
      if (!fitted && shapes.features.length) {
        map.fitBounds(layer.getBounds());
        fitted = true;
      }
      summary.textContent = `${shapes.features.length} 个${LEVEL_LABELS[level]} · 在办 ${board.total.open} 件 · 预警 ${board.total.warning} · 超时 ${board.total.overdue}`;
      drawLegend(colour, max);
      box.dataset.drawn = String(shapes.features.length);
      box.dataset.drawnLevel = level;
      message.textContent = '';
    } catch (err) {
      message.textContent = err.message;
    }
  }

  function drawLegend(colour, max) {
    const item = (fill, label) => {
      const swatch = h('span', { class: 'swatch' });
      swatch.style.background = fill;
      return h('div', {}, swatch, label);
    };
    clear(legend).append(h('strong', { text: '图例' }));
    if (colour === 'sla') {
      legend.append(item('#b71c1c', '超时占比 > 20%'), item('#e53935', '有超时'), item('#fbc02d', '有预警'), item('#66bb6a', '均在时限内'), item('#eef3f7', '无在办'));
    } else {
      legend.append(item(OPEN_RAMP[0], '0 件'));
      let shown = 0;
      rampBreaks(max, OPEN_RAMP.length).forEach((upTo, i) => {
        legend.append(item(OPEN_RAMP[i + 1], upTo === shown + 1 ? `${upTo} 件` : `${shown + 1}–${upTo} 件`));
        shown = upTo;
      });
    }
  }

  levelSelect.addEventListener('change', () => { state.level = levelSelect.value; draw(); });
  colourSelect.addEventListener('change', () => { state.colour = colourSelect.value; draw(); });
  draw();
  const stop = onChange(debounce(draw, 2000));
  return () => {
    alive = false;
    stop();
    resized.disconnect();
    map.remove();
  };
}
