import { setServerTime } from './dom.js';

// The /v1 API as the console uses it: the session cookie signs calls in, changes carry the
// session's CSRF token, errors come back as ApiError with the server's Chinese detail.

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export const session = { account: null, csrf: null };
const listeners = new Set();

export function onSignedOut(fn) {
  listeners.add(fn);
}

async function request(method, path, { json, form, body, raw } = {}) {
  const headers = { Accept: 'application/json' };
  let payload = body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(json);
  } else if (form !== undefined) {
    payload = new URLSearchParams(form);
  }
  if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch (err) {
    throw new ApiError(0, 'network', '无法连接服务器，请检查网络后重试');
  }
  if (raw && res.ok) return res;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    data = null;
  }
  if (!res.ok) {
    const error = new ApiError(res.status, data && data.error, data && data.detail);
    if (res.status === 401 && !path.startsWith('/v1/auth/session')) {
      session.account = null;
      session.csrf = null;
      for (const fn of listeners) fn(error);
    }
    throw error;
  }
  return data;
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, json) => request('POST', path, { json: json || {} }),
  upload: (path, file) => {
    const body = new FormData();
    body.append('file', file);
    return request('POST', path, { body });
  },
};

export async function signIn(username, password) {
  const data = await request('POST', '/v1/auth/session', { form: { username, password } });
  setServerTime(data.server_time);
  session.account = data;
  session.csrf = data.csrf_token;
  return data;
}

export async function resume() {
  try {
    const data = await request('GET', '/v1/auth/session');
    setServerTime(data.server_time);
    session.account = data;
    session.csrf = data.csrf_token;
    return data;
  } catch (err) {
    if (err.status === 401) return null;
    throw err;
  }
}

export async function signOut() {
  try {
    await request('DELETE', '/v1/auth/session');
  } finally {
    session.account = null;
    session.csrf = null;
  }
}

// Reference data, read once per page load.
const cache = new Map();
export function cached(path) {
  if (!cache.has(path)) {
    const pending = api.get(path).catch((err) => {
      cache.delete(path);
      throw err;
    });
    cache.set(path, pending);
  }
  return cache.get(path);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) value.forEach((v) => q.append(key, v));
    else q.append(key, value);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// Live changes (GET /v1/events/stream): one EventSource for the page; handlers get each change.
const changeHandlers = new Set();
let source = null;
let stateHandler = () => {};

export function onChange(fn) {
  changeHandlers.add(fn);
  return () => changeHandlers.delete(fn);
}

export function onLiveState(fn) {
  stateHandler = fn;
}

export function startLive() {
  if (source) return;
  source = new EventSource('/v1/events/stream');
  source.addEventListener('open', () => stateHandler('live'));
  source.addEventListener('error', () => stateHandler(source && source.readyState === 2 ? 'closed' : 'reconnecting'));
  source.addEventListener('case', (event) => {
    let change;
    try {
      change = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    for (const fn of changeHandlers) fn(change);
  });
}

export function stopLive() {
  if (source) source.close();
  source = null;
  stateHandler('closed');
}
