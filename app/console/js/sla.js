// SLA 看板: red and yellow cards per department and per town (GET /v1/stats/open), then the
// overdue and warned cases, oldest deadline first.
import { api, onChange, query } from './api.js';
import { clear, debounce, fmtTime, h } from './dom.js';
import { OPEN } from './queue.js';

function cards(title, board, testid) {
  return h('section', { class: 'board', testid },
    h('h3', { text: title }),
    h('div', { class: 'cards' }, board.items.map((row) => h('div', { class: `card ${row.overdue ? 'red' : row.warning ? 'yellow' : 'green'}` },
      h('div', { class: 'card-title', text: row.name || row.code }),
      h('div', { class: 'card-figures' },
        h('span', { class: 'figure red', text: `超时 ${row.overdue}` }),
        h('span', { class: 'figure yellow', text: `预警 ${row.warning}` }),
        h('span', { class: 'figure', text: `在办 ${row.open}` })),
      h('div', { class: 'muted', text: row.oldest_due_at ? `最早时限 ${fmtTime(row.oldest_due_at)}` : '' })))));
}

function caseList(title, page, testid) {
  return h('section', { class: 'board', testid },
    h('h3', { text: `${title}（${page.total} 件，时限最早的在前）` }),
    h('table', { class: 'cases' },
      h('thead', {}, h('tr', {}, ['案件编号', '时限', '部门', '类别', '村居 / 网格', '升级'].map((t) => h('th', { text: t })))),
      h('tbody', {}, page.items.map((c) => h('tr', { class: `row ${c.warning_level}` },
        h('td', {}, h('a', { href: `#/case/${c.id}`, text: c.case_no })),
        h('td', { text: fmtTime(c.due_at) }),
        h('td', { text: c.department_name || c.department_code }),
        h('td', { text: c.subcategory_name || c.category_code }),
        h('td', { text: c.area_path.filter((a) => a.level === 'village' || a.level === 'grid').map((a) => a.name).join(' / ') }),
        h('td', { text: c.escalation_level ? `${['', '村居', '镇街', '区'][c.escalation_level]}` : '—' }))))));
}

export function renderSla(main) {
  const message = h('p', { class: 'error', role: 'alert' });
  const body = h('div', { testid: 'sla-board' });
  main.append(h('div', { class: 'page-head' }, h('h2', { text: 'SLA 看板' })), message, body);
  async function load() {
    try {
      const [departments, towns, overdue, warning] = await Promise.all([
        api.get('/v1/stats/open?by=department'),
        api.get('/v1/stats/open?by=town'),
        api.get(`/v1/cases${query({ sla: 'overdue', status: OPEN, sort: 'due_at', limit: 50 })}`),
        api.get(`/v1/cases${query({ sla: 'warning', status: OPEN, sort: 'due_at', limit: 50 })}`),
      ]);
      clear(body).append(
        cards('各部门', departments, 'sla-departments'),
        cards('各镇街', towns, 'sla-towns'),
        caseList('超时（红牌）', overdue, 'sla-overdue'),
        caseList('预警（黄牌）', warning, 'sla-warning'));
      message.textContent = '';
    } catch (err) {
      message.textContent = err.message;
    }
  }
  load();
  return onChange(debounce(load, 1500));
}
