// 统计考核: the 考核 figures of a period (GET /v1/stats/departments, /v1/stats/areas) as tables,
// rankings drawn as SVG bars, and CSV and XLSX downloads of the same.
import { api, query, session } from './api.js';
import { clear, h, LEVEL_LABELS, localDate, serverNow, num, pct } from './dom.js';

const COLUMNS = [
  ['received', '受理'], ['closed', '结案'], ['on_time', '按时'], ['overdue', '超时'],
  ['on_time_rate', '按时率'], ['returned', '退单'], ['extended', '延期'], ['redone', '重办'],
  ['visited', '回访'], ['satisfied', '满意'], ['satisfaction_rate', '满意率'],
  ['avg_handling_working_hours', '平均处置工时'],
];
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// Horizontal bars, best first: one row per unit, the rate as a bar and a number.
export function rankingChart(title, rows, key) {
  const ranked = rows.filter((r) => r[key] !== null && r[key] !== undefined).sort((a, b) => b[key] - a[key]).slice(0, 16);
  const rowHeight = 22;
  const width = 520;
  const labelWidth = 150;
  const height = Math.max(1, ranked.length) * rowHeight + 8;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', 'aria-label': title });
  ranked.forEach((r, i) => {
    const y = 4 + i * rowHeight;
    const barWidth = Math.max(1, (width - labelWidth - 60) * r[key]);
    chart.append(
      svg('text', { x: labelWidth - 6, y: y + 14, 'text-anchor': 'end', class: 'chart-label' }, `${i + 1}. ${r.name}`),
      svg('rect', { x: labelWidth, y: y + 2, width: barWidth, height: rowHeight - 6, class: r[key] >= 0.9 ? 'bar good' : r[key] >= 0.7 ? 'bar fair' : 'bar poor' }),
      svg('text', { x: labelWidth + barWidth + 6, y: y + 14, class: 'chart-value' }, pct(r[key])));
  });
  return h('figure', { class: 'chart', testid: 'ranking-chart' }, h('figcaption', { text: title }), ranked.length ? chart : h('p', { class: 'muted', text: '本期无数据' }));
}

function table(rows, nameLabel) {
  return h('table', { class: 'stats' },
    h('thead', {}, h('tr', {}, h('th', { text: nameLabel }), COLUMNS.map(([, label]) => h('th', { text: label })))),
    h('tbody', {}, rows.map((r) => h('tr', {}, h('td', { text: r.name }), COLUMNS.map(([key]) => h('td', {
      class: 'num',
      text: key.endsWith('_rate') ? pct(r[key]) : key.startsWith('avg_') ? num(r[key], 1) : num(r[key]),
    }))))));
}

export function renderStats(main) {
  const now = serverNow();
  const today = localDate(now);
  const from = h('input', { type: 'date', name: 'from', value: `${today.slice(0, 8)}01` });
  const to = h('input', { type: 'date', name: 'to', value: today });
  const level = h('select', { name: 'level' }, ['town', 'village', 'grid'].map((l) => h('option', { value: l, text: LEVEL_LABELS[l] })));
  const message = h('p', { class: 'error', role: 'alert' });
  const body = h('div', { testid: 'stats-body' });
  main.append(
    h('div', { class: 'page-head' }, h('h2', { text: '统计考核' })),
    h('div', { class: 'filters' }, h('label', { class: 'filter' }, '从', from), h('label', { class: 'filter' }, '到', to), h('label', { class: 'filter' }, '区域层级', level)),
    message, body);

  async function load() {
    const period = { from: from.value, to: to.value };
    try {
      // A unit reads its own row only; the areas' figures are the command centres'.
      const centre = session.account && session.account.role !== 'department';
      const [departments, areas] = await Promise.all([
        api.get(`/v1/stats/departments${query(period)}`),
        centre ? api.get(`/v1/stats/areas${query({ ...period, level: level.value })}`) : { items: [] },
      ]);
      const deptRows = departments.items.map((r) => ({ ...r, name: r.department_name || r.department_code }));
      const areaRows = areas.items.map((r) => ({ ...r, name: r.area_name || r.area_code }));
      const csv = (path, params) => ['csv', 'xlsx'].map((format) => h('a', {
        class: 'download', href: `${path}${query({ ...params, format })}`, download: '', testid: `download-${format}`, text: `下载 ${format.toUpperCase()}`,
      }));
      clear(body).append(
        h('div', { class: 'charts' },
          rankingChart('部门按时办结率排名', deptRows, 'on_time_rate'),
          rankingChart('部门满意率排名', deptRows, 'satisfaction_rate')),
        h('section', { testid: 'stats-departments' }, h('h3', {}, '各部门 ', csv('/v1/stats/departments', period)), table(deptRows, '部门')),
        centre ? h('section', { testid: 'stats-areas' }, h('h3', {}, `各${LEVEL_LABELS[level.value]} `, csv('/v1/stats/areas', { ...period, level: level.value })), table(areaRows, LEVEL_LABELS[level.value])) : null);
      message.textContent = '';
    } catch (err) {
      message.textContent = err.message;
    }
  }
  for (const el of [from, to, level]) el.addEventListener('change', load);
  load();
  return () => {};
}
