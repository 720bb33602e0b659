// 案件详情: the text, photos, the place on its grid, stages, the timeline, 并单 candidates and
// the actions this account may take now (forms from GET /v1/workflow/actions).
import { api, ApiError, cached, onChange } from './api.js';
import {
  CHANNEL_LABELS, clear, debounce, FIELD_LABELS, fmtTime, h, LEVEL_LABELS, remaining,
  SATISFACTION_LABELS, slaBadge,
} from './dom.js';
import { baseMap, outlineStyle } from './map.js';

const STAGE_LABELS = { accept: '签收', handle: '处置', verify: '核查' };

function fact(label, value) {
  return h('div', { class: 'fact' }, h('dt', { text: label }), h('dd', {}, value === null || value === undefined || value === '' ? '—' : value));
}

export function renderCase(main, caseId) {
  const message = h('p', { class: 'error', role: 'alert', testid: 'case-error' });
  const notice = h('p', { class: 'notice', testid: 'case-changed' });
  const body = h('div', { class: 'case', testid: 'case-detail' }, h('p', { class: 'loading', text: '正在加载…' }));
  main.append(h('div', { class: 'page-head' }, h('a', { href: '#/queue', class: 'back', text: '← 返回待办' })), message, notice, body);
  let map = null;
  let version = null;
  let formOpen = false; // a live change waits until the open form is sent or dropped
  let stale = false;

  async function load() {
    stale = false;
    notice.textContent = '';
    try {
      const [c, forms] = await Promise.all([api.get(`/v1/cases/${caseId}`), cached('/v1/workflow/actions')]);
      version = c.version;
      draw(c, new Map(forms.items.map((f) => [f.action, f])));
    } catch (err) {
      message.textContent = err.message;
      if (err.status === 404) clear(body);
    }
  }

  function draw(c, forms) {
    if (map) { map.remove(); map = null; }
    const mapBox = h('div', { class: 'case-map', testid: 'case-map' });
    const photos = h('div', { class: 'photos' }, c.attachments.length ? c.attachments.map((a) =>
      h('a', { href: `/v1/attachments/${encodeURIComponent(a.id)}`, target: '_blank', rel: 'noopener', title: { report: '上报照片', resolve: '处置照片', verify: '核查照片' }[a.purpose] },
        h('img', { src: `/v1/attachments/${encodeURIComponent(a.id)}?size=thumb`, alt: '照片', loading: 'lazy' }))) : h('p', { class: 'muted', text: '无照片' }));
    const path = c.area_path.map((a) => `${a.name}`).join(' › ');
    const stages = c.stages.length ? h('ul', { class: 'stages' }, c.stages.map((s) =>
      h('li', {}, h('strong', { text: STAGE_LABELS[s.stage] || s.stage }), ' ', slaBadge(s.warning_level), ` 截止 ${fmtTime(s.due_at)}，${remaining(s.remaining_working_hours)}`))) : null;
    const timeline = h('ol', { class: 'timeline', testid: 'timeline' }, (c.history || []).map((row) => {
      const label = (forms.get(row.action) || {}).label || (row.action === 'report' ? '上报' : row.action);
      const extras = [];
      if (row.reason) extras.push(h('div', { class: 'reason', text: `原因：${row.reason}` }));
      if (row.data && row.data.note) extras.push(h('div', { class: 'reason', text: `说明：${row.data.note}` }));
      if (row.data && row.data.department_code) extras.push(h('div', { class: 'muted', text: `部门：${row.data.department_code}` }));
      if (row.data && row.data.satisfaction) extras.push(h('div', { class: 'muted', text: `满意度：${SATISFACTION_LABELS[row.data.satisfaction] || row.data.satisfaction}` }));
      return h('li', {}, h('time', { text: fmtTime(row.at) }), ' ', h('strong', { text: label }), ` · ${row.actor}`, extras);
    }));
    const duplicates = c.duplicate_candidates.length ? h('ul', { class: 'dupes', testid: 'duplicates' }, c.duplicate_candidates.map((d) =>
      h('li', {}, h('a', { href: `#/case/${d.case_id}`, text: d.case_no }), ` 相距 ${Math.round(d.distance_m)} 米 · ${fmtTime(d.reported_at)}`))) : h('p', { class: 'muted', text: '无' });
    const actions = h('div', { class: 'actions', testid: 'actions' });
    const formBox = h('div', { class: 'action-form' });
    for (const name of c.actions) {
      const form = forms.get(name);
      if (!form) continue;
      const button = h('button', { type: 'button', class: 'action', testid: `action-${name}`, text: form.label });
      button.addEventListener('click', () => openForm(c, form, formBox));
      actions.append(button);
    }
    if (!c.actions.length) actions.append(h('p', { class: 'muted', text: '当前没有可执行的操作' }));
    clear(body).append(
      h('section', { class: 'case-main' },
        h('h2', {}, `案件 ${c.case_no} `, h('span', { class: `status ${c.status}`, text: c.status_label }), ' ', slaBadge(c.warning_level)),
        h('p', { class: 'description', testid: 'case-description', text: c.description }),
        photos,
        h('dl', { class: 'facts' },
          fact('类别', `${c.category_code} ${c.category_name || ''} / ${c.subcategory_code} ${c.subcategory_name || ''}${c.classification_uncertain ? '（分类存疑，请核对）' : ''}`),
          fact('事项（条）', c.item_name),
          fact('处置部门', c.department_name || c.department_code),
          fact('位置', path),
          fact('渠道', CHANNEL_LABELS[c.channel] || c.channel),
          fact('上报时间', fmtTime(c.reported_at)),
          fact('办理时限', c.due_at ? fmtTime(c.due_at) : null),
          fact('升级层级', c.escalation_level ? `${['', '村居', '镇街', '区'][c.escalation_level] || c.escalation_level}指挥中心` : '未升级'),
          fact('延期', c.extension_request_hours ? `申请 ${c.extension_request_hours} 工作小时，待审批` : `${c.extension_count} 次`),
          fact('退单 / 重办', `${c.return_count} / ${c.redo_count}`),
          fact('回访', c.visit_satisfaction ? SATISFACTION_LABELS[c.visit_satisfaction] : null)),
        stages ? h('div', {}, h('h3', { text: '各环节时限' }), stages) : null,
        h('h3', { text: '可执行操作' }), actions, formBox,
        h('h3', { text: '并单候选' }), duplicates),
      h('section', { class: 'case-side' }, mapBox, h('h3', { text: '办理过程' }), timeline));
    drawMap(c, mapBox);
  }

  async function drawMap(c, box) {
    if (!window.L) return;
    const mine = baseMap(box, { zoomControl: true });
    map = mine;
    const point = window.L.circleMarker([c.lat, c.lng], { radius: 7, color: '#c0392b', fillColor: '#e74c3c', fillOpacity: 0.9 }).addTo(map);
    map.setView([c.lat, c.lng], 16);
    try {
      const village = c.grid_code.slice(0, 12);
      const grids = await cached(`/v1/grids?level=grid&parent=${village}`);
      const feature = grids.features.find((f) => f.id === c.grid_code);
      if (feature && map === mine) {
        const outline = window.L.geoJSON(feature, { style: outlineStyle }).addTo(map);
        map.fitBounds(outline.getBounds().extend(point.getLatLng()), { padding: [20, 20] });
      }
    } catch (err) {
      // the point alone is still useful
    }
  }

  async function openForm(c, form, box) {
    const fields = [...form.needs.map((f) => [f, true]), ...form.takes.map((f) => [f, false])];
    if (form.photos) fields.push(['attachment_ids', false]);
    const inputs = {};
    const error = h('p', { class: 'error', role: 'alert', testid: 'action-error' });
    const submit = h('button', { type: 'submit', class: 'primary', testid: 'action-submit', text: `确认${form.label}` });
    const cancel = h('button', { type: 'button', text: '取消' });
    const rows = [];
    for (const [field, required] of fields) {
      const control = await fieldControl(field, c);
      inputs[field] = control;
      rows.push(h('label', { class: 'field' }, `${FIELD_LABELS[field] || field}${required ? '（必填）' : ''}`, control.element));
    }
    const el = h('form', { class: 'form', testid: `form-${form.action}` }, h('h4', { text: form.label }), rows, h('div', { class: 'buttons' }, submit, cancel), error);
    cancel.addEventListener('click', () => {
      clear(box);
      formOpen = false;
      if (stale) load();
    });
    el.addEventListener('submit', async (event) => {
      event.preventDefault();
      submit.disabled = true;
      error.textContent = '';
      try {
        const payload = { expected_version: version };
        for (const [field, control] of Object.entries(inputs)) {
          const value = await control.value();
          if (value !== undefined && value !== '' && value !== null) payload[field] = value;
        }
        await api.post(`/v1/cases/${c.id}/${form.action}`, payload);
        clear(box);
        formOpen = false;
        await load();
      } catch (err) {
        error.textContent = err instanceof ApiError && err.code === 'stale_case'
          ? '案件已被他人更新，已重新加载，请确认后再操作' : err.message;
        if (err.code === 'stale_case') {
          clear(box);
          formOpen = false;
          load();
        }
      } finally {
        submit.disabled = false;
      }
    });
    clear(box).append(el);
    formOpen = true;
  }

  load();
  const stop = onChange(debounce((change) => {
    if (String(change.case_id) !== String(caseId) && change.case_no !== caseId) return;
    if (formOpen) {
      stale = true;
      notice.textContent = '案件刚被更新，提交或取消当前操作后将刷新';
    } else {
      load();
    }
  }, 200));
  return () => {
    stop();
    if (map) map.remove();
    map = null;
  };
}

async function fieldControl(field, c) {
  const text = (el) => ({ element: el, value: async () => el.value.trim() });
  switch (field) {
    case 'reason':
    case 'note':
      return text(h('textarea', { name: field, rows: 3, maxlength: field === 'note' ? 4000 : 2000 }));
    case 'hours':
    case 'amount': {
      const el = h('input', { name: field, type: 'number', min: 1, step: 1 });
      return { element: el, value: async () => (el.value === '' ? undefined : Number(el.value)) };
    }
    case 'passed': {
      const yes = h('input', { type: 'radio', name: 'passed', value: 'true' });
      const no = h('input', { type: 'radio', name: 'passed', value: 'false' });
      const el = h('span', { class: 'radios' }, h('label', {}, yes, '通过'), h('label', {}, no, '不通过（重办）'));
      return { element: el, value: async () => (yes.checked ? true : no.checked ? false : undefined) };
    }
    case 'satisfaction': {
      const el = h('select', { name: field }, h('option', { value: '', text: '请选择' }),
        Object.entries(SATISFACTION_LABELS).map(([v, t]) => h('option', { value: v, text: t })));
      return text(el);
    }
    case 'department_code': {
      const departments = await cached('/v1/departments');
      const el = h('select', { name: field }, h('option', { value: '', text: '按事项默认' }),
        departments.items.filter((d) => d.active !== false).map((d) => h('option', { value: d.code, text: d.name })));
      return text(el);
    }
    case 'category_code':
    case 'subcategory_code': {
      const taxonomy = await cached('/v1/taxonomy');
      if (field === 'category_code') {
        const el = h('select', { name: field }, h('option', { value: '', text: '（由小类确定）' }),
          taxonomy.categories.map((cat) => h('option', { value: cat.code, text: `${cat.code} ${cat.name}` })));
        return text(el);
      }
      const el = h('select', { name: field }, h('option', { value: '', text: '保持当前分类' }),
        taxonomy.categories.map((cat) => h('optgroup', { label: `${cat.code} ${cat.name}` },
          cat.subcategories.map((s) => h('option', { value: s.code, text: `${s.code} ${s.name}` })))));
      el.value = '';
      return text(el);
    }
    case 'item_code': {
      const el = h('input', { name: field, maxlength: 8, placeholder: '事项编码（可选）' });
      return text(el);
    }
    case 'into_case_id': {
      const el = h('input', { name: field, type: 'number', min: 1, list: 'dupe-candidates' });
      const list = h('datalist', { id: 'dupe-candidates' }, c.duplicate_candidates.map((d) => h('option', { value: d.case_id, text: d.case_no })));
      return { element: h('span', {}, el, list), value: async () => (el.value === '' ? undefined : Number(el.value)) };
    }
    case 'attachment_ids': {
      const el = h('input', { name: field, type: 'file', accept: 'image/jpeg,image/png,image/webp', multiple: true });
      return {
        element: el,
        value: async () => {
          const ids = [];
          for (const file of el.files) ids.push((await api.upload('/v1/attachments', file)).id);
          return ids.length ? ids : undefined;
        },
      };
    }
    default:
      return text(h('input', { name: field, maxlength: 200 }));
  }
}

export { LEVEL_LABELS };
