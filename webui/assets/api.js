// The /v1 control API, as the CLI uses it: JSON calls and NDJSON streams,
// each with the token as a bearer header. The token arrives once in the
// URL's fragment (#token=...), which browsers never send, and is kept in
// this tab's sessionStorage.

const KEY = 'warren.token';

// takeToken moves a #token=... fragment to sessionStorage and removes it
// from the address bar and the history.
export function takeToken() {
  const m = /^#token=([^&]*)/.exec(location.hash);
  if (!m) return;
  try { sessionStorage.setItem(KEY, decodeURIComponent(m[1])); } catch { /* storage off: no login */ }
  history.replaceState(null, '', location.pathname + location.search + '#/overview');
}

export function token() {
  try { return sessionStorage.getItem(KEY) || ''; } catch { return ''; }
}

export function forgetToken() {
  try { sessionStorage.removeItem(KEY); } catch { /* nothing kept */ }
}

// APIError is a failed call: the API's {"error", "code"} body and status.
export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(json) {
  const h = {};
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

// call makes one JSON call and returns the decoded answer.
export async function call(method, path, body, signal) {
  let r;
  try {
    r = await fetch(path, {
      method, headers: headers(body !== undefined), cache: 'no-store', credentials: 'omit', signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, 'network', 'the daemon did not answer (' + e.message + ')');
  }
  const text = await r.text();
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch { v = null; }
  if (!r.ok) {
    throw new APIError(r.status, (v && v.code) || '', (v && v.error) || text.trim() || r.statusText);
  }
  return v;
}

export const get = (path, signal) => call('GET', path, undefined, signal);
export const post = (path, body) => call('POST', path, body);

// maxLine bounds one NDJSON record the page buffers (a message is at most
// messages.max_message_size, 4 MiB by default, in base64).
const maxLine = 16 << 20;

// stream opens an NDJSON stream and calls onRecord with each decoded
// record until the stream ends or signal aborts. It resolves when the
// stream ends and rejects with an APIError if the daemon refused it.
export async function stream(path, signal, onRecord) {
  let r;
  try {
    r = await fetch(path, { headers: headers(false), cache: 'no-store', credentials: 'omit', signal });
  } catch (e) {
    if (e.name === 'AbortError') return;
    throw new APIError(0, 'network', 'the daemon did not answer (' + e.message + ')');
  }
  if (!r.ok) {
    const text = await r.text();
    let v = null;
    try { v = JSON.parse(text); } catch { v = null; }
    throw new APIError(r.status, (v && v.code) || '', (v && v.error) || text.trim() || r.statusText);
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) onRecord(JSON.parse(line));
      }
      if (buf.length > maxLine) throw new APIError(0, 'too_large', 'a stream record is over 16 MiB');
    }
  } catch (e) {
    if (e.name === 'AbortError') return;
    throw e;
  } finally {
    reader.releaseLock?.();
  }
}
