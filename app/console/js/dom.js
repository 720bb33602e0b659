// DOM helpers: every text goes in through textContent, never through HTML (residents' texts
// are hostile input: they are shown, never run).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'testid') el.dataset.testid = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const TZ = 'Asia/Shanghai';
const dateTime = new Intl.DateTimeFormat('zh-CN', {
  timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', hour12: false,
});
const dayOnly = new Intl.DateTimeFormat('zh-CN', {
  timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit',
});

export function fmtTime(iso) {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

export function fmtDay(iso) {
  return iso ? dayOnly.format(new Date(iso)) : '—';
}

// The service's clock, as of sign-in (GET /v1/auth/session `server_time`): default periods follow
// it rather than the PC's clock.
let offsetMs = 0;
export function setServerTime(iso) {
  if (iso) offsetMs = new Date(iso).getTime() - Date.now();
}
export function serverNow() {
  return new Date(Date.now() + offsetMs);
}

export function localDate(d) {
  // YYYY-MM-DD of a Date in the district's zone.
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  return parts;
}

export function pct(x) {
  return x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}%`;
}

export function num(x, digits = 0) {
  return x === null || x === undefined ? '—' : Number(x).toFixed(digits);
}

export const STATUS_LABELS = {
  // The API's own labels (dispatch/names.py), for the status filter before any case is read.
  reported: '待受理', registered: '已立案', dispatched: '已派遣', accepted: '处置中',
  suspended: '已挂起', resolved: '已反馈', verified: '已核查', closed: '已结案',
  rejected: '不予立案', merged: '已并单',
};

export const CHANNEL_LABELS = {
  grid_worker: '网格员', wechat: '微信公众号', open311: '市民应用', dispatcher: '指挥中心',
};

export const ROLE_LABELS = {
  admin: '管理员', dispatcher: '指挥中心', department: '职能部门', grid_worker: '网格员',
};

export const LEVEL_LABELS = { district: '区', town: '镇街', village: '村居', grid: '网格' };

export const SATISFACTION_LABELS = {
  satisfied: '满意', basically_satisfied: '基本满意', dissatisfied: '不满意',
};

export const FIELD_LABELS = {
  reason: '原因', note: '说明', department_code: '处置部门', subcategory_code: '小类',
  category_code: '大类', item_code: '事项（条）', grid_code: '网格', hours: '申请工作小时数',
  amount: '延长时限（按案件时限单位）', passed: '核查结果', satisfaction: '回访满意度',
  into_case_id: '并入案件', attachment_ids: '照片',
};

export function slaBadge(level) {
  if (level === 'red') return h('span', { class: 'badge red', text: '超时' });
  if (level === 'yellow') return h('span', { class: 'badge yellow', text: '预警' });
  return h('span', { class: 'badge green', text: '正常' });
}

export function remaining(hours) {
  if (hours === null || hours === undefined) return '—';
  if (hours < 0) return `已超 ${(-hours).toFixed(1)} 工作小时`;
  return `剩余 ${hours.toFixed(1)} 工作小时`;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
