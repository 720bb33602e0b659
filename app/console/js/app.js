// The console's shell: sign-in, the frame (top bar, navigation, live indicator), hash routes.
import { api, onChange, onLiveState, onSignedOut, resume, session, signIn, signOut, startLive, stopLive } from './api.js';
import { clear, debounce, h, ROLE_LABELS } from './dom.js';
import { renderCase } from './case.js';
import { renderMap } from './map.js';
import { renderQueue } from './queue.js';
import { renderSla } from './sla.js';
import { renderStats } from './stats.js';
import { renderWarnings } from './warnings.js';

const root = document.getElementById('app');
let current = null; // the page's cleanup, if any

const CENTRE_NAV = [
  ['#/queue', '待办'],
  ['#/map', '网格地图'],
  ['#/warnings', '预警'],
  ['#/sla', 'SLA 看板'],
  ['#/stats', '统计考核'],
];
const DEPARTMENT_NAV = [['#/department', '部门待办'], ['#/stats', '统计考核']];

function isCentre() {
  const role = session.account && session.account.role;
  return role === 'dispatcher' || role === 'admin';
}

function home() {
  return isCentre() ? '#/queue' : '#/department';
}

function showSignIn(message) {
  stopLive();
  document.title = '登录 · gridgov 指挥中心';
  const error = h('p', { class: 'error', role: 'alert', testid: 'login-error', text: message || '' });
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, maxlength: 64 });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 256 });
  const button = h('button', { type: 'submit', class: 'primary', text: '登录' });
  const form = h('form', { class: 'login', testid: 'login-form' },
    h('h1', { text: 'gridgov 网格化社会治理' }),
    h('p', { class: 'muted', text: '指挥中心工作台' }),
    h('label', {}, '用户名', username),
    h('label', {}, '密码', password),
    button,
    error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = '';
    try {
      await signIn(username.value.trim(), password.value);
      if (!location.hash || location.hash === '#/login') location.hash = home();
      start();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
  clear(root).append(h('div', { class: 'login-page' }, form));
  username.focus();
}

let liveDot = null;
let titleCount = null;

function frame() {
  const account = session.account;
  liveDot = h('span', { class: 'live', testid: 'live-indicator', title: '实时更新', text: '● 连接中' });
  const nav = h('nav', { class: 'side' },
    (isCentre() ? CENTRE_NAV : DEPARTMENT_NAV).map(([href, label]) =>
      h('a', { href, dataset: { route: href }, text: label })));
  const out = h('button', { class: 'link', testid: 'sign-out', text: '签退' });
  out.addEventListener('click', async () => {
    try {
      await signOut();
    } catch (err) {
      // signed out locally whatever the server said
    }
    location.hash = '#/login';
    showSignIn('已签退');
  });
  const who = account.display_name || account.username;
  const scope = account.area_code ? ` · 辖区 ${account.area_code}` : account.department_code ? ` · ${account.department_code}` : '';
  const main = h('main', { id: 'page', class: 'page' });
  clear(root).append(
    h('header', { class: 'top' },
      h('strong', { class: 'brand', text: 'gridgov 指挥中心' }),
      liveDot,
      h('span', { class: 'spacer' }),
      h('span', { class: 'who', testid: 'who', text: `${who}（${ROLE_LABELS[account.role] || account.role}${scope}）` }),
      out),
    h('div', { class: 'body' }, nav, main));
  return main;
}

onLiveState((state) => {
  if (!liveDot) return;
  liveDot.className = `live ${state}`;
  liveDot.textContent = state === 'live' ? '● 实时' : state === 'reconnecting' ? '● 重连中' : '● 未连接';
  liveDot.dataset.state = state;
});

// The tab title shows how many cases wait for this account (new reports for a command centre,
// dispatched and accepted cases for a unit), kept current by the live stream.
async function refreshTitleCount() {
  const statuses = isCentre() ? ['reported', 'registered'] : ['dispatched', 'accepted'];
  try {
    const q = statuses.map((s) => `status=${s}`).join('&');
    const page = await api.get(`/v1/cases?${q}&limit=1`);
    titleCount = page.total;
  } catch (err) {
    titleCount = null;
  }
  setTitle();
}

let pageTitle = '';
function setTitle(name) {
  if (name) pageTitle = name;
  document.title = `${titleCount !== null ? `(${titleCount}) ` : ''}${pageTitle} · gridgov 指挥中心`;
}

const ROUTES = [
  [/^#\/queue$/, (main) => renderQueue(main, { mode: 'centre' }), '待办'],
  [/^#\/department$/, (main) => renderQueue(main, { mode: 'department' }), '部门待办'],
  [/^#\/case\/(\d+)$/, (main, m) => renderCase(main, m[1]), '案件详情'],
  [/^#\/map$/, (main) => renderMap(main), '网格地图'],
  [/^#\/warnings$/, (main) => renderWarnings(main), '预警'],
  [/^#\/sla$/, (main) => renderSla(main), 'SLA 看板'],
  [/^#\/stats$/, (main) => renderStats(main), '统计考核'],
];

let main = null;

function route() {
  if (!session.account) return;
  if (!main || !document.body.contains(main)) main = frame();
  const hash = location.hash || home();
  if (typeof current === 'function') current();
  current = null;
  for (const link of document.querySelectorAll('nav.side a')) {
    link.classList.toggle('active', hash.startsWith(link.dataset.route));
  }
  for (const [pattern, render, name] of ROUTES) {
    const m = hash.match(pattern);
    if (m) {
      setTitle(name);
      clear(main);
      current = render(main, m);
      return;
    }
  }
  location.hash = home();
}

function start() {
  main = null;
  route();
  startLive();
  refreshTitleCount();
}

const countLater = debounce(refreshTitleCount, 300);
onChange(() => countLater());
onSignedOut(() => showSignIn('登录已失效，请重新登录'));
window.addEventListener('hashchange', () => {
  if (location.hash === '#/login') return;
  route();
});

(async () => {
  try {
    const account = await resume();
    if (account) start();
    else showSignIn();
  } catch (err) {
    showSignIn(err.message);
  }
})();
