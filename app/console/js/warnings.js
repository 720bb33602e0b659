// 预警: open and acknowledged warnings (GET /v1/warnings) on the map and in words, acknowledge
// and close them; a heat layer of reports by category and period (GET /v1/stats/heat).
import { api, cached, query } from './api.js';
import { clear, fmtTime, h, localDate, serverNow } from './dom.js';
import { backdrop, baseMap, popupContent, rampColour, SIMPLIFY } from './map.js';

const KIND_LABELS = { cluster: '时空聚集', spike: '网格突增' };
const STATUS_LABELS = { open: '待处理', acknowledged: '已确认', closed: '已关闭' };
const HEAT_RAMP = ['#fff5eb', '#fdd0a2', '#fd8d3c', '#d94801', '#7f2704'];

export function renderWarnings(main) {
  const message = h('p', { class: 'error', role: 'alert' });
  const list = h('div', { class: 'warnings', testid: 'warning-list' });
  const box = h('div', { class: 'big-map', testid: 'warning-map' });
  const today = serverNow();
  const from = h('input', { type: 'date', name: 'from', value: localDate(new Date(today.getTime() - 29 * 86400000)) });
  const to = h('input', { type: 'date', name: 'to', value: localDate(today) });
  const category = h('select', { name: 'category_code' }, h('option', { value: '', text: '全部类别' }));
  const heatOn = h('input', { type: 'checkbox', name: 'heat' });
  const heatNote = h('span', { class: 'muted', testid: 'heat-summary' });
  main.append(
    h('div', { class: 'page-head' }, h('h2', { text: '预警' })),
    h('div', { class: 'filters' },
      h('label', { class: 'check' }, heatOn, '热力图层'),
      h('label', { class: 'filter' }, '类别', category),
      h('label', { class: 'filter' }, '从', from),
      h('label', { class: 'filter' }, '到', to),
      heatNote),
    message,
    h('div', { class: 'split' }, h('div', { class: 'map-wrap' }, box), list));
  if (!window.L) {
    message.textContent = '地图组件未加载';
    return () => {};
  }
  const map = baseMap(box);
  map.setView([23.02, 113.1], 12);
  backdrop(map);
  let circles = null;
  let heat = null;
  let alive = true; // false once the page is left: late answers draw nothing

  cached('/v1/taxonomy').then((t) => category.append(...t.categories.map((c) => h('option', { value: c.code, text: `${c.code} ${c.name}` })))).catch(() => {});

  async function loadWarnings() {
    try {
      const [open, acknowledged] = await Promise.all([
        api.get('/v1/warnings?status=open'), api.get('/v1/warnings?status=acknowledged')]);
      if (!alive) return;
      const items = [...open.items, ...acknowledged.items];
      if (circles) circles.remove();
      circles = window.L.layerGroup().addTo(map);
      clear(list).append(h('h3', { text: `未关闭的预警 ${items.length} 条` }));
      if (!items.length) list.append(h('p', { class: 'muted', text: '目前没有预警' }));
      for (const w of items) {
        const circle = window.L.circle([w.center.lat, w.center.lng], {
          radius: Math.max(w.radius_m, 80), color: w.status === 'open' ? '#c62828' : '#ef6c00', weight: 2, fillOpacity: 0.2,
        }).addTo(circles);
        circle.bindPopup(popupContent(`${KIND_LABELS[w.kind] || w.kind} · ${w.category_code}`, [w.summary]));
        list.append(card(w, circle));
      }
      if (items.length) map.fitBounds(circles.getLayers().map((c) => c.getBounds()).reduce((a, b) => a.extend(b)), { maxZoom: 15 });
      message.textContent = '';
    } catch (err) {
      message.textContent = err.message;
    }
  }

  function card(w, circle) {
    const note = h('input', { name: 'note', maxlength: 2000, placeholder: '处置说明（可选）' });
    const error = h('p', { class: 'error', role: 'alert' });
    const act = (action) => async () => {
      try {
        await api.post(`/v1/warnings/${w.id}/${action}`, note.value.trim() ? { note: note.value.trim() } : {});
        loadWarnings();
      } catch (err) {
        error.textContent = err.message;
      }
    };
    const buttons = [];
    if (w.status === 'open') buttons.push(h('button', { type: 'button', testid: 'warning-acknowledge', text: '确认', onclick: act('acknowledge') }));
    buttons.push(h('button', { type: 'button', testid: 'warning-close', text: '关闭', onclick: act('close') }));
    const show = h('button', { type: 'button', class: 'link', text: '在地图上查看' });
    show.addEventListener('click', () => { map.fitBounds(circle.getBounds(), { maxZoom: 16 }); circle.openPopup(); });
    return h('article', { class: `warning ${w.status}`, testid: 'warning-card' },
      h('header', {}, h('strong', { text: `${KIND_LABELS[w.kind] || w.kind} · ${STATUS_LABELS[w.status] || w.status}` }), ' ', show),
      h('p', { class: 'summary', text: w.summary }),
      h('p', { class: 'muted', text: `观察 ${w.observed} 起，预期 ${w.expected.toFixed(1)} 起；p = ${w.p_value.toPrecision(2)}${w.recurrence_days ? `；偶然出现约每 ${Math.round(w.recurrence_days)} 天一次` : ''}；窗口 ${fmtTime(w.window_start)} — ${fmtTime(w.window_end)}` }),
      h('p', { class: 'cases' }, '涉及案件：', w.case_ids.slice(0, 30).map((id) => h('a', { href: `#/case/${id}`, text: `#${id} ` })), w.case_ids.length > 30 ? `… 共 ${w.case_ids.length} 件` : ''),
      w.note ? h('p', { class: 'muted', text: `说明：${w.note}` }) : null,
      h('div', { class: 'buttons' }, note, buttons), error);
  }

  async function loadHeat() {
    if (heat) { heat.remove(); heat = null; }
    heatNote.textContent = '';
    if (!heatOn.checked) return;
    try {
      const params = { level: 'grid', from: from.value, to: to.value, category_code: category.value };
      const [shapes, cells] = await Promise.all([
        cached(`/v1/grids?level=grid&simplify=${SIMPLIFY.grid}`), api.get(`/v1/stats/heat${query(params)}`)]);
      if (!alive) return;
      const counts = new Map(cells.items.map((c) => [c.area_code, c.count]));
      heat = window.L.geoJSON(shapes, {
        style: (f) => ({ color: '#8d6e63', weight: 0.3, fillOpacity: counts.get(f.id) ? 0.7 : 0.05, fillColor: rampColour(counts.get(f.id) || 0, cells.max_count, HEAT_RAMP) }),
        onEachFeature: (f, shape) => shape.on('click', () => shape.bindPopup(popupContent(f.properties.name, [`上报 ${counts.get(f.id) || 0} 件`])).openPopup()),
      }).addTo(map);
      heat.bringToBack();
      heatNote.textContent = `热力：${cells.total} 件，单网格最多 ${cells.max_count} 件`;
    } catch (err) {
      message.textContent = err.message;
    }
  }

  for (const el of [heatOn, from, to, category]) el.addEventListener('change', loadHeat);
  loadWarnings();
  return () => {
    alive = false;
    map.remove();
  };
}
