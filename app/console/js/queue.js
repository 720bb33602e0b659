// 待办: the live queue (GET /v1/cases with filters, sorting and paging), for a command centre
// or, in `department` mode, a unit's own cases.
import { api, cached, onChange, query } from './api.js';
import { CHANNEL_LABELS, clear, debounce, fmtTime, h, slaBadge, STATUS_LABELS } from './dom.js';

// The statuses of the loop (not closed, rejected or merged).
export const OPEN = ['reported', 'registered', 'dispatched', 'accepted', 'suspended', 'resolved', 'verified'];
const PAGE_SIZE = 50;

function select(name, label, options, value) {
  const el = h('select', { name, 'aria-label': label },
    options.map(([v, text]) => h('option', { value: v, text })));
  el.value = value || '';
  return h('label', { class: 'filter' }, label, el);
}

export function renderQueue(main, { mode }) {
  const department = mode === 'department';
  const state = {
    statuses: department ? ['dispatched', 'accepted'] : OPEN.slice(),
    category_code: '', town: '', village: '', department_code: '', sla: '', channel: '', q: '',
    sort: department ? 'due_at' : '-reported_at', offset: 0,
  };
  const statusBoxes = h('fieldset', { class: 'statuses' }, h('legend', { text: '状态' }),
    Object.entries(STATUS_LABELS).map(([code, label]) => {
      const box = h('input', { type: 'checkbox', value: code });
      box.checked = state.statuses.includes(code);
      box.addEventListener('change', () => {
        state.statuses = [...statusBoxes.querySelectorAll('input:checked')].map((b) => b.value);
        state.offset = 0;
        load();
      });
      return h('label', { class: 'check' }, box, label);
    }));
  const filters = h('form', { class: 'filters', testid: 'queue-filters' });
  const table = h('table', { class: 'cases', testid: 'queue-table' });
  const pager = h('div', { class: 'pager' });
  const total = h('span', { class: 'total', testid: 'queue-total' });
  const message = h('p', { class: 'error', role: 'alert' });
  main.append(
    h('div', { class: 'page-head' },
      h('h2', { text: department ? '部门待办' : '待办' }), total),
    filters, statusBoxes, message, table, pager);

  const textBox = h('input', { name: 'q', type: 'search', placeholder: '关键词或案件编号', maxlength: 100 });
  textBox.addEventListener('input', debounce(() => {
    state.q = textBox.value.trim();
    state.offset = 0;
    load();
  }, 300));

  Promise.all([cached('/v1/taxonomy'), cached('/v1/departments'), cached('/v1/areas?level=town')])
    .then(([taxonomy, departments, towns]) => {
      const controls = [
        select('category_code', '类别', [['', '全部类别'], ...taxonomy.categories.map((c) => [c.code, `${c.code} ${c.name}`])]),
        select('town', '镇街', [['', '全部镇街'], ...towns.items.map((t) => [t.code, t.name])]),
        select('village', '村居', [['', '全部村居']]),
        department ? null : select('department_code', '部门', [['', '全部部门'], ...departments.items.map((d) => [d.code, d.name])]),
        select('sla', '时限', [['', '全部'], ['ok', '正常'], ['warning', '预警（黄牌）'], ['overdue', '超时（红牌）']]),
        department ? null : select('channel', '渠道', [['', '全部渠道'], ...Object.entries(CHANNEL_LABELS)]),
        select('sort', '排序', [['-reported_at', '最新上报'], ['reported_at', '最早上报'], ['due_at', '时限最近'], ['-due_at', '时限最远']], state.sort),
        h('label', { class: 'filter' }, '搜索', textBox),
      ];
      clear(filters).append(...controls.filter(Boolean));
      filters.addEventListener('change', async (event) => {
        const { name, value } = event.target;
        if (!name || name === 'q') return;
        if (name === 'town') {
          state.town = value;
          state.village = '';
          const villageSelect = filters.querySelector('select[name=village]');
          clear(villageSelect).append(h('option', { value: '', text: '全部村居' }));
          if (value) {
            const villages = await cached(`/v1/areas?level=village&parent=${value}`);
            villageSelect.append(...villages.items.map((v) => h('option', { value: v.code, text: v.name })));
          }
        } else {
          state[name] = value;
        }
        state.offset = 0;
        load();
      });
      filters.addEventListener('submit', (event) => event.preventDefault());
    })
    .catch((err) => { message.textContent = err.message; });

  let loading = 0;
  async function load() {
    const ticket = ++loading;
    const params = {
      status: state.statuses,
      category_code: state.category_code,
      area_code: state.village || state.town,
      department_code: state.department_code,
      sla: state.sla,
      channel: state.channel,
      q: state.q,
      sort: state.sort,
      limit: PAGE_SIZE,
      offset: state.offset,
    };
    try {
      const page = await api.get(`/v1/cases${query(params)}`);
      if (ticket !== loading) return;
      message.textContent = '';
      draw(page);
    } catch (err) {
      if (ticket === loading) message.textContent = err.message;
    }
  }

  function draw(page) {
    total.textContent = `共 ${page.total} 件`;
    clear(table).append(
      h('thead', {}, h('tr', {}, ['案件编号', '上报时间', '类别', '描述', '所在村居 / 网格', '部门', '状态', '时限', '渠道']
        .map((t) => h('th', { text: t })))),
      h('tbody', {}, page.items.map((c) => {
        const place = c.area_path.filter((a) => a.level === 'village' || a.level === 'grid').map((a) => a.name).join(' / ');
        const row = h('tr', { class: `row ${c.warning_level}`, testid: 'queue-row', dataset: { caseId: c.id, status: c.status } },
          h('td', {}, h('a', { href: `#/case/${c.id}`, text: c.case_no })),
          h('td', { text: fmtTime(c.reported_at) }),
          h('td', { text: c.subcategory_name || c.category_name || c.category_code }),
          h('td', { class: 'desc', title: c.description, text: c.description.length > 60 ? `${c.description.slice(0, 60)}…` : c.description }),
          h('td', { text: place }),
          h('td', { text: c.department_name || c.department_code }),
          h('td', { text: c.status_label || STATUS_LABELS[c.status] || c.status }),
          h('td', {}, slaBadge(c.warning_level), c.due_at ? ` ${fmtTime(c.due_at)}` : ''),
          h('td', { text: CHANNEL_LABELS[c.channel] || c.channel }));
        row.addEventListener('click', (event) => {
          if (event.target.tagName !== 'A') location.hash = `#/case/${c.id}`;
        });
        return row;
      })));
    if (!page.items.length) {
      table.append(h('tbody', {}, h('tr', {}, h('td', { colspan: 9, class: 'empty', text: '没有符合条件的案件' }))));
    }
    const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
    const at = Math.floor(state.offset / PAGE_SIZE) + 1;
    const prev = h('button', { type: 'button', text: '上一页', disabled: at <= 1 });
    const next = h('button', { type: 'button', text: '下一页', disabled: at >= pages });
    prev.addEventListener('click', () => { state.offset -= PAGE_SIZE; load(); });
    next.addEventListener('click', () => { state.offset += PAGE_SIZE; load(); });
    clear(pager).append(prev, h('span', { text: `第 ${at} / ${pages} 页` }), next);
  }

  load();
  const stop = onChange(debounce(load, 250));
  return stop;
}
