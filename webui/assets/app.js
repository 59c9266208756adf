// warren dashboard: polls the /v1 API every two seconds, streams the live
// tail as NDJSON, and keeps 15 minutes of samples of the daemon's counters
// for the Traffic charts.

import * as api from './api.js';
import * as fmt from './fmt.js';
import { lineChart, spark } from './chart.js';

const POLL_MS = 2000;
const WINDOW_MS = 15 * 60 * 1000;
const SPARK_POINTS = 60; // two minutes of per-tunnel rates
const TAIL_MAX = 200; // entries kept in the live tail
const STATUS_RETRY = 15; // polls between tries of a missing /v1/status
const PAGES = ['overview', 'peers', 'tunnels', 'messages', 'traffic'];

const $ = (id) => document.getElementById(id);

// h builds an element: h('td', {class: 'num', text: '3', dataset: {k: 'v'}}, child...).
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// keepFocus re-renders a region and puts keyboard focus back on the
// element with the same data-key, so a live refresh never steals it.
function keepFocus(region, render) {
  const a = document.activeElement;
  const key = a && region.contains(a) ? a.dataset.key : undefined;
  render();
  if (key) region.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

const state = {
  status: null, // GET /v1/status, when the daemon has it
  statusMissing: false,
  statusRetry: 0,
  id: null, health: null, version: null, peers: [],
  tunnels: [], streams: [], msgStats: null, topics: [],
  samples: [], // {t, net:[in,out], tun:[in,out], msg:[in,out], drops}
  rates: [], // {t, netIn, netOut, tunIn, tunOut, msgIn, msgOut, drops}
  tunnelRates: new Map(), // tunnel id: {prev:{t,in,out}, in:[], out:[]}
  updated: null,
  page: 'overview',
};

// ------------------------------------------------------------ peers

function transportOf(p) {
  if (p.transport) return p.transport;
  const a = p.addr || '';
  if (a.includes('/p2p-circuit')) return 'circuit';
  for (const t of ['webtransport', 'webrtc-direct', 'quic-v1', 'wss', 'ws']) if (a.includes('/' + t)) return t;
  if (a.includes('/tcp/')) return 'tcp';
  return '';
}

// isDirect: the daemon's own "direct" when it says so; else a connection
// without relay limits whose address is no circuit.
function isDirect(p) {
  if (p.direct === true) return true;
  return !p.limited && !(p.addr || '').includes('/p2p-circuit') && p.transport !== 'circuit';
}

function peers() {
  return (state.status && state.status.peers) || state.peers || [];
}

// ------------------------------------------------------------ polling

async function poll() {
  const tasks = [];
  const useStatus = !state.statusMissing || --state.statusRetry <= 0;
  let err = null;
  const fail = (e) => {
    if (!err || e.status === 401) err = e;
  };
  if (useStatus) {
    tasks.push(api.get('/v1/status').then((v) => { state.status = v; state.statusMissing = false; }, (e) => {
      if (e.status === 404 || e.status === 405) {
        state.statusMissing = true;
        state.statusRetry = STATUS_RETRY;
        state.status = null;
      } else fail(e);
    }));
  }
  tasks.push(api.get('/v1/tunnels').then((v) => { state.tunnels = v || []; }, fail));
  tasks.push(api.get('/v1/tunnels/streams').then((v) => { state.streams = v || []; }, fail));
  tasks.push(api.get('/v1/messages/stats').then((v) => { state.msgStats = v; }, fail));
  tasks.push(api.get('/v1/topics').then((v) => { state.topics = v || []; }, fail));
  await Promise.all(tasks);
  if (state.statusMissing || !state.status) {
    // Without /v1/status: what /v1/id, /v1/health and /v1/peers tell.
    await Promise.all([
      api.get('/v1/id').then((v) => { state.id = v; }, fail),
      api.get('/v1/health').then((v) => { state.health = v; }, fail),
      api.get('/v1/peers').then((v) => { state.peers = v || []; }, fail),
      state.version ? null : api.get('/v1/version').then((v) => { state.version = v; }, fail),
    ]);
  }
  return err;
}

function sum(list, f) {
  let s = 0;
  for (const x of list || []) s += Number(f(x)) || 0;
  return s;
}

// sample records the daemon's counters and the rates since the last sample.
function sample() {
  const t = Date.now();
  const types = Object.values((state.msgStats && state.msgStats.types) || {});
  const s = {
    t,
    net: [sum(peers(), (p) => p.bytes_in), sum(peers(), (p) => p.bytes_out)],
    tun: [sum(state.tunnels, (x) => x.bytes_in), sum(state.tunnels, (x) => x.bytes_out)],
    msg: [sum(types, (x) => x.msgs_in) + sum(state.topics, (x) => x.received),
      sum(types, (x) => x.msgs_out) + sum(state.topics, (x) => x.published)],
    drops: sum(types, (x) => x.dropped) + sum(state.topics, (x) => x.dropped),
  };
  const prev = state.samples[state.samples.length - 1];
  state.samples.push(s);
  if (prev) {
    const dt = (t - prev.t) / 1000;
    // A counter that went down (a peer left, a tunnel closed) adds nothing.
    const r = (a, b) => Math.max(0, (a - b) / dt);
    state.rates.push({ t, netIn: r(s.net[0], prev.net[0]), netOut: r(s.net[1], prev.net[1]),
      tunIn: r(s.tun[0], prev.tun[0]), tunOut: r(s.tun[1], prev.tun[1]),
      msgIn: r(s.msg[0], prev.msg[0]), msgOut: r(s.msg[1], prev.msg[1]), drops: r(s.drops, prev.drops) });
  }
  const cut = t - WINDOW_MS - POLL_MS;
  while (state.samples.length && state.samples[0].t < cut) state.samples.shift();
  while (state.rates.length && state.rates[0].t < cut) state.rates.shift();
  // Per-tunnel rates for the sparklines.
  const seen = new Set();
  for (const x of state.tunnels) {
    seen.add(x.id);
    let tr = state.tunnelRates.get(x.id);
    if (!tr) {
      tr = { prev: null, in: [], out: [] };
      state.tunnelRates.set(x.id, tr);
    }
    if (tr.prev) {
      const dt = (t - tr.prev.t) / 1000;
      tr.in.push(Math.max(0, (x.bytes_in - tr.prev.in) / dt));
      tr.out.push(Math.max(0, (x.bytes_out - tr.prev.out) / dt));
      if (tr.in.length > SPARK_POINTS) { tr.in.shift(); tr.out.shift(); }
    }
    tr.prev = { t, in: x.bytes_in, out: x.bytes_out };
  }
  for (const id of state.tunnelRates.keys()) if (!seen.has(id)) state.tunnelRates.delete(id);
}

let timer = null;
async function tick() {
  clearTimeout(timer);
  const err = await poll();
  const conn = $('conn');
  if (err && err.status === 401) {
    api.forgetToken();
    showLogin('the API refused this page\'s token (' + err.status + ' ' + err.code + '): it belongs to another daemon or run');
    return;
  }
  if (err) {
    conn.className = 'conn bad';
    conn.textContent = err.message.length > 60 ? err.message.slice(0, 60) + '…' : err.message;
    conn.title = err.message;
  } else {
    state.updated = new Date();
    conn.className = 'conn ok';
    conn.textContent = 'live · ' + fmt.clock(state.updated);
    conn.title = 'updated every ' + POLL_MS / 1000 + ' s';
  }
  sample();
  render();
  timer = setTimeout(tick, POLL_MS);
}

// refresh polls now, after an action.
const refresh = () => tick();

// ------------------------------------------------------------ pages

function render() {
  renderDatalists();
  switch (state.page) {
    case 'overview': return renderOverview();
    case 'peers': return renderPeers();
    case 'tunnels': return renderTunnels();
    case 'messages': return renderMessages();
    case 'traffic': return renderTraffic();
  }
}

function fillList(ul, items, empty) {
  ul.replaceChildren(...(items.length ? items.map((a) => h('li', { text: a })) : [h('li', { class: 'none', text: empty })]));
}

function renderDatalists() {
  $('peer-ids').replaceChildren(...peers().map((p) => h('option', { value: p.id })));
  $('topic-names').replaceChildren(...state.topics.map((t) => h('option', { value: t.name })));
  const names = $('tail-kind').value === 'topic' ? state.topics.map((t) => t.name)
    : Object.keys((state.msgStats && state.msgStats.types) || {});
  $('tail-names').replaceChildren(...names.map((n) => h('option', { value: n })));
}

function renderOverview() {
  const st = state.status;
  const id = st ? st.id : state.id && state.id.id;
  $('ov-id').textContent = id || '…';
  $('ov-agent').textContent = (st ? st.agent : state.id && state.id.agent) || '…';
  $('ov-version').textContent = (st ? st.version : state.version && state.version.version + ' (' + state.version.go + ')') || '…';
  $('ov-network').textContent = (st ? st.network + (st.public_network ? ' (public libp2p network)' : '') : state.id && state.id.network) || '…';
  $('ov-uptime').textContent = fmt.duration(st ? st.uptime_s : state.health && state.health.uptime_s);
  $('ov-nostatus').hidden = !!st;
  const reach = $('ov-reach');
  if (st) {
    reach.textContent = st.reachability;
    reach.className = 'badge ' + ({ public: 'good', private: 'warn' }[st.reachability] || '');
    $('ov-reach-src').textContent = { autonat: 'probed by peers (AutoNAT)', config: 'forced by [swarm] reachability', none: 'not learnt yet' }[st.reachability_source] || st.reachability_source;
    const pm = st.port_mapping || {};
    $('ov-portmap').textContent = !pm.enabled ? 'off' : pm.state + (pm.mapped && pm.mapped.length ? ': ' + pm.mapped.join(', ') : '') + (pm.error ? ' (' + pm.error + ')' : '');
    const hp = st.hole_punch || {};
    $('ov-holepunch').textContent = `${fmt.count(hp.attempts)} attempts, ${fmt.count(hp.successes)} succeeded, ${fmt.count(hp.failures)} failed`;
    fillList($('ov-listen'), st.listen_addrs || [], 'none');
    fillList($('ov-announced'), st.announced_addrs || [], 'none');
    fillList($('ov-observed'), st.observed_addrs || [], 'none yet');
    $('ov-observed-h').hidden = $('ov-observed').hidden = false;
    const relays = (st.relays || []).map((r) => {
      const exp = r.expires && !r.expires.startsWith('0001') ? ', expires in ' + fmt.duration((new Date(r.expires) - Date.now()) / 1000) : '';
      return `${fmt.shortID(r.relay)}: ${(r.addrs || []).length} address(es)${exp}`;
    });
    fillList($('ov-relays'), relays, 'No reservation.');
  } else {
    reach.textContent = 'unknown';
    reach.className = 'badge';
    for (const k of ['ov-reach-src', 'ov-portmap', 'ov-holepunch']) $(k).textContent = '—';
    fillList($('ov-listen'), [], 'not reported by this daemon');
    fillList($('ov-announced'), (state.id && state.id.addrs) || [], 'none');
    $('ov-observed-h').hidden = $('ov-observed').hidden = true;
    fillList($('ov-relays'), [], 'not reported by this daemon');
  }
  const ps = peers();
  $('ov-peer-count').textContent = `(${ps.length}: ${ps.filter(isDirect).length} direct)`;
  $('ov-peers').replaceChildren(...(ps.length ? ps.map((p) => h('li', { dataset: { peer: p.id } },
    h('code', { class: 'mono', title: p.id, text: fmt.shortID(p.id) }),
    pathBadge(p),
    h('span', { class: 'muted', text: [transportOf(p), fmt.ms(p.latency_ms)].filter((x) => x && x !== '—').join(' · ') })))
    : [h('li', { class: 'none', text: 'No peer is connected.' })]));
}

function pathBadge(p) {
  const d = isDirect(p);
  return h('span', { class: 'badge path ' + (d ? 'good' : 'warn'), text: d ? 'direct' : 'relayed' });
}

function td(label, content, cls) {
  const cell = h('td', { 'data-label': label, class: cls });
  cell.append(content);
  return cell;
}

function renderPeers() {
  const ps = peers();
  $('peers-count').textContent = `(${ps.length})`;
  $('peers-empty').hidden = ps.length > 0;
  const tbody = $('peers-table').tBodies[0];
  keepFocus(tbody, () => tbody.replaceChildren(...ps.map((p) => h('tr', { dataset: { peer: p.id } },
    td('Peer', h('code', { class: 'mono', title: p.id + (p.addr ? '\n' + p.addr : ''), text: fmt.shortID(p.id) })),
    td('Path', pathBadge(p)),
    td('Transport', transportOf(p) || '—'),
    td('RTT', fmt.ms(p.latency_ms), 'num'),
    td('In', h('span', { class: 'bytes-in', dataset: { bytes: p.bytes_in || 0 }, text: fmt.bytes(p.bytes_in) }), 'num'),
    td('Out', h('span', { class: 'bytes-out', dataset: { bytes: p.bytes_out || 0 }, text: fmt.bytes(p.bytes_out) }), 'num'),
    td('Streams', String(p.streams || 0), 'num'),
    td('Direction', (p.direction || '').toLowerCase()),
    td('', h('button', { type: 'button', class: 'danger small', 'data-key': 'disc-' + p.id,
      'aria-label': 'Disconnect ' + p.id, text: 'Disconnect', onclick: () => disconnect(p.id) }))))));
}

async function disconnect(id) {
  $('peers-error').textContent = '';
  try {
    await api.post('/v1/peers/disconnect', { peer: id });
  } catch (e) {
    $('peers-error').textContent = e.message;
  }
  refresh();
}

function renderTunnels() {
  const ts = state.tunnels;
  $('tunnels-count').textContent = `(${ts.length})`;
  $('tunnels-empty').hidden = ts.length > 0;
  const list = $('tunnels-list');
  keepFocus(list, () => list.replaceChildren(...ts.map((t) => {
    const tr = state.tunnelRates.get(t.id) || { in: [], out: [] };
    const rin = tr.in.length ? tr.in[tr.in.length - 1] : 0, rout = tr.out.length ? tr.out[tr.out.length - 1] : 0;
    const listen = t.kind === 'listen';
    const allow = !listen ? null : h('div', { class: 'allow' }, h('span', { class: 'muted', text: 'Allowed: ' }),
      t.allow && t.allow.length ? t.allow.map(fmt.shortID).join(', ') : 'any peer');
    return h('article', { class: 'tunnel', dataset: { tunnelId: t.id, protocol: t.protocol }, 'aria-label': `${t.kind} tunnel ${t.protocol}` },
      h('div', { class: 'head' },
        h('span', { class: 'badge', text: t.kind }),
        h('span', { class: 'proto', text: t.protocol }),
        t.transport ? h('span', { class: 'badge', text: t.transport }) : null,
        t.temp ? h('span', { class: 'badge', text: 'temporary' }) : null,
        h('span', { class: 'muted', text: '#' + t.id }),
        h('button', { type: 'button', class: 'danger small close', 'data-key': 'close-' + t.id,
          'aria-label': `Close ${t.kind} tunnel ${t.protocol}`, text: 'Close', onclick: () => closeTunnel(t.id) })),
      h('div', { class: 'path' },
        h('span', { class: 'listen-address', text: listen ? 'peers → ' + t.protocol : t.listen_address }), ' → ',
        h('span', { class: 'target-address', title: t.target_address, text: listen ? t.target_address : 'peer ' + fmt.shortID(t.target_address.replace('/p2p/', '')) })),
      allow,
      h('div', { class: 'stats' },
        h('span', {}, 'streams ', h('b', { class: 'active', text: `${t.active_streams}/${t.max_conns}` })),
        h('span', {}, 'in ', h('b', { class: 'bytes-in', dataset: { bytes: t.bytes_in }, text: fmt.bytes(t.bytes_in) })),
        h('span', {}, 'out ', h('b', { class: 'bytes-out', dataset: { bytes: t.bytes_out }, text: fmt.bytes(t.bytes_out) })),
        h('span', {}, 'opened ', h('b', { text: fmt.count(t.streams_opened) })),
        t.streams_refused ? h('span', {}, 'refused ', h('b', { text: fmt.count(t.streams_refused) })) : null,
        t.streams_refused_limit ? h('span', {}, 'over cap ', h('b', { text: fmt.count(t.streams_refused_limit) })) : null,
        t.streams_failed ? h('span', {}, 'failed ', h('b', { text: fmt.count(t.streams_failed) })) : null),
      t.error ? h('div', { class: 'err', text: t.error }) : null,
      h('div', { class: 'spark' },
        spark(tr.in, tr.out, `bytes per second over the last two minutes: in ${fmt.rate(rin)}, out ${fmt.rate(rout)}`),
        h('div', { class: 'rate', text: `in ${fmt.rate(rin)} · out ${fmt.rate(rout)} · peak ${fmt.rate(Math.max(0, ...tr.in, ...tr.out))}` })));
  })));
  const ss = state.streams;
  $('streams-count').textContent = `(${ss.length})`;
  $('streams-empty').hidden = ss.length > 0;
  const tbody = $('streams-table').tBodies[0];
  const byID = new Map(ts.map((t) => [t.id, t]));
  keepFocus(tbody, () => tbody.replaceChildren(...ss.map((s) => h('tr', { dataset: { streamId: s.id } },
    td('Stream', '#' + s.id),
    td('Tunnel', (byID.get(s.tunnel_id) || { protocol: '#' + s.tunnel_id }).protocol),
    td('Peer', h('code', { class: 'mono', title: s.remote_address, text: fmt.shortID(s.peer) })),
    td('Local end', h('span', { class: 'mono', text: s.local_address })),
    td('In', fmt.bytes(s.bytes_in), 'num'),
    td('Out', fmt.bytes(s.bytes_out), 'num'),
    td('Open for', fmt.duration((Date.now() - new Date(s.opened)) / 1000), 'num'),
    td('', h('button', { type: 'button', class: 'danger small', 'data-key': 'sclose-' + s.id,
      'aria-label': 'Close stream ' + s.id, text: 'Close', onclick: () => closeStream(s.id) }))))));
}

async function closeTunnel(id) {
  $('tunnels-error').textContent = '';
  try {
    await api.post('/v1/tunnels/close', { id });
  } catch (e) {
    $('tunnels-error').textContent = e.message;
  }
  refresh();
}

async function closeStream(id) {
  $('tunnels-error').textContent = '';
  try {
    await api.post('/v1/tunnels/streams/close', { id });
  } catch (e) {
    $('tunnels-error').textContent = e.message;
  }
  refresh();
}

function renderMessages() {
  // The "(other)" bucket (types not known locally) only once it counted something.
  const types = Object.entries((state.msgStats && state.msgStats.types) || {})
    .filter(([name, s]) => name !== '(other)' || Object.values(s).some((v) => v))
    .sort(([a], [b]) => a.localeCompare(b));
  $('types-empty').hidden = types.length > 0;
  $('types-table').tBodies[0].replaceChildren(...types.map(([name, s]) => h('tr', { dataset: { type: name } },
    td('Type', h('code', { text: name })),
    td('In', fmt.count(s.msgs_in), 'num'), td('Out', fmt.count(s.msgs_out), 'num'),
    td('Bytes in', fmt.bytes(s.bytes_in), 'num'), td('Bytes out', fmt.bytes(s.bytes_out), 'num'),
    td('Dropped', h('span', { class: s.dropped ? 'badge bad' : '', text: fmt.count(s.dropped) }), 'num'),
    td('Duplicates', fmt.count(s.duplicates), 'num'), td('Unhandled', fmt.count(s.unhandled), 'num'),
    td('Send failed', fmt.count(s.send_failed), 'num'), td('Subscribers', String(s.subscribers), 'num'))));
  const topics = state.topics;
  $('topics-empty').hidden = topics.length > 0;
  $('topics-table').tBodies[0].replaceChildren(...topics.map((t) => h('tr', { dataset: { topic: t.name } },
    td('Topic', h('code', { text: t.name })),
    td('Peers', String(t.peers), 'num'), td('Mesh', String(t.mesh), 'num'),
    td('Published', fmt.count(t.published), 'num'), td('Received', fmt.count(t.received), 'num'),
    td('Dropped', h('span', { class: t.dropped ? 'badge bad' : '', text: fmt.count(t.dropped) }), 'num'),
    td('Rejected', fmt.count(t.rejected), 'num'), td('Subscriptions', String(t.subscriptions), 'num'))));
}

function renderTraffic() {
  const now = Date.now();
  const rs = state.rates;
  const pts = (f) => rs.map((r) => [r.t, f(r)]);
  const first = state.samples[0];
  // The window grows with the samples, from one minute to fifteen.
  const windowMs = Math.min(WINDOW_MS, Math.max(60000, first ? now - first.t : 0));
  const base = { windowMs, now };
  const noPeerBytes = !state.status && peers().every((p) => !p.bytes_in && !p.bytes_out);
  lineChart($('chart-bytes'), { ...base, title: 'Network bytes per second', binary: true, fmt: fmt.rate, minTop: 1024,
    note: noPeerBytes ? 'This daemon does not count bytes per peer (it has no /v1/status yet): the line stays at zero.' : '',
    series: [{ name: 'in', cls: 'in', points: pts((r) => r.netIn) }, { name: 'out', cls: 'out', points: pts((r) => r.netOut) }] });
  lineChart($('chart-tunnel'), { ...base, title: 'Tunnel bytes per second', binary: true, fmt: fmt.rate, minTop: 1024,
    series: [{ name: 'in', cls: 'in', points: pts((r) => r.tunIn) }, { name: 'out', cls: 'out', points: pts((r) => r.tunOut) }] });
  lineChart($('chart-msgs'), { ...base, title: 'Messages per second (direct and topics)', fmt: fmt.perSec, minTop: 1,
    series: [{ name: 'in', cls: 'in', points: pts((r) => r.msgIn) }, { name: 'out', cls: 'out', points: pts((r) => r.msgOut) }] });
  lineChart($('chart-drops'), { ...base, title: 'Drops per second (messages and topics)', fmt: fmt.perSec, minTop: 1,
    series: [{ name: 'dropped', cls: 'bad', points: pts((r) => r.drops) }] });
  $('tr-interval').textContent = POLL_MS / 1000 + ' s';
  $('tr-span').textContent = first ? `${state.samples.length} samples since ${fmt.clock(first.t)}` : 'no samples yet';
}

// ------------------------------------------------------------ forms

function clearErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
}

// showError puts the API's message next to the field it names (by the
// first rule whose pattern matches it), else under the form.
function showError(form, e, rules, fallback) {
  const msg = e.code ? `${e.message} (${e.code})` : e.message;
  for (const [re, field] of rules) {
    if (re.test(e.message)) {
      $(field + '-error').textContent = msg;
      $(field).setAttribute('aria-invalid', 'true');
      $(field).focus();
      return;
    }
  }
  $(fallback).textContent = msg;
}

function onSubmit(form, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    let keep = false;
    try {
      keep = (await fn()) === true; // true: fn set the button's state itself
    } finally {
      if (!keep) btn.disabled = false;
    }
  });
}

function setupForms() {
  onSubmit($('connect-form'), async () => {
    $('connect-result').textContent = 'connecting…';
    try {
      const r = await api.post('/v1/peers/connect', { addr: $('connect-addr').value.trim() });
      $('connect-result').textContent = 'connected to ' + fmt.shortID(r.id);
      $('connect-addr').value = '';
    } catch (e) {
      $('connect-result').textContent = '';
      showError($('connect-form'), e, [[/./, 'connect-addr']], 'connect-addr-error');
    }
    refresh();
  });

  onSubmit($('forward-form'), async () => {
    $('fwd-result').textContent = '';
    try {
      const t = await api.post('/v1/tunnels/forward', {
        protocol: $('fwd-protocol').value.trim(), listen_address: $('fwd-listen').value.trim(),
        peer: $('fwd-peer').value.trim(), temp: $('fwd-temp').checked,
      });
      $('fwd-result').textContent = `forwarding ${t.listen_address} (#${t.id})`;
      $('fwd-result').dataset.listenAddress = t.listen_address;
      $('fwd-result').dataset.tunnelId = t.id;
    } catch (e) {
      showError($('forward-form'), e, [
        [/listen_address|listen address|listen on|bound address|address already in use/i, 'fwd-listen'],
        [/\bpeer\b/i, 'fwd-peer'],
        [/protocol/i, 'fwd-protocol'],
      ], 'fwd-form-error');
    }
    refresh();
  });

  onSubmit($('listen-form'), async () => {
    $('lis-result').textContent = '';
    const allow = $('lis-allow').value.split(/[\s,]+/).filter(Boolean);
    try {
      const t = await api.post('/v1/tunnels/listen', {
        protocol: $('lis-protocol').value.trim(), target: $('lis-target').value.trim(),
        allow: allow.length ? allow : undefined, temp: $('lis-temp').checked,
      });
      $('lis-result').textContent = `listening on ${t.protocol} (#${t.id})`;
    } catch (e) {
      showError($('listen-form'), e, [
        [/\btarget\b/i, 'lis-target'],
        [/\ballow\b|peer ID/i, 'lis-allow'],
        [/protocol/i, 'lis-protocol'],
      ], 'lis-form-error');
    }
    refresh();
  });

  onSubmit($('send-form'), async () => {
    $('send-result').textContent = '';
    try {
      const r = await api.post('/v1/messages/send', {
        peer: $('send-peer').value.trim(), type: $('send-type').value.trim(), payload: fmt.b64($('send-payload').value),
      });
      $('send-result').textContent = `queued (${r.sent})`;
    } catch (e) {
      showError($('send-form'), e, [
        [/\bpeer\b/i, 'send-peer'],
        [/\btype\b/i, 'send-type'],
        [/payload|size|large/i, 'send-payload'],
      ], 'send-form-error');
    }
    refresh();
  });

  onSubmit($('pub-form'), async () => {
    $('pub-result').textContent = 'publishing…';
    try {
      const r = await api.post('/v1/topics/publish', { topic: $('pub-topic').value.trim(), data: fmt.b64($('pub-data').value), timeout_ms: 5000 });
      $('pub-result').textContent = `published (${r.published})`;
    } catch (e) {
      $('pub-result').textContent = '';
      showError($('pub-form'), e, [
        [/\btopic\b|no_peers|subscribed/i, 'pub-topic'],
        [/data|size|large/i, 'pub-data'],
      ], 'pub-form-error');
    }
    refresh();
  });

  setupTail();
}

// ------------------------------------------------------------ live tail

let tailAbort = null;

function setupTail() {
  const status = $('tail-status');
  const stop = () => {
    if (tailAbort) tailAbort.abort();
    tailAbort = null;
    $('tail-start').disabled = false;
    $('tail-stop').disabled = true;
  };
  $('tail-stop').addEventListener('click', () => { stop(); status.textContent = 'stopped'; status.dataset.state = 'stopped'; });
  $('tail-clear').addEventListener('click', () => $('tail').replaceChildren());
  $('tail-kind').addEventListener('change', renderDatalists);
  onSubmit($('tail-form'), async () => {
    stop();
    const kind = $('tail-kind').value, name = $('tail-name').value.trim();
    const path = kind === 'topic'
      ? '/v1/topics/subscribe?' + new URLSearchParams({ topic: name, buffer: '256' })
      : '/v1/messages/subscribe?' + new URLSearchParams({ type: name, policy: 'drop-oldest', buffer: '256' });
    const ctl = new AbortController();
    tailAbort = ctl;
    $('tail-start').disabled = true;
    $('tail-stop').disabled = false;
    status.textContent = 'subscribing…';
    status.dataset.state = 'subscribing';
    const list = $('tail');
    // The stream runs on after the submit handler returns.
    api.stream(path, ctl.signal, (rec) => {
      if (rec.subscribed) {
        status.textContent = `tailing ${kind} “${name}”: waiting for messages`;
        status.dataset.state = 'subscribed';
        return;
      }
      if (rec.dropped !== undefined) {
        status.textContent = `tailing ${kind} “${name}”: ${fmt.count(rec.dropped)} dropped (this page fell behind)`;
        list.prepend(h('li', { class: 'drop', text: `${fmt.count(rec.dropped)} message(s) dropped so far` }));
        return;
      }
      status.textContent = `tailing ${kind} “${name}”`;
      list.prepend(h('li', { dataset: { id: rec.id } },
        h('span', { class: 't', text: fmt.clock(rec.time) }),
        h('span', { class: 'from', title: rec.from, text: 'from ' + fmt.shortID(rec.from) + (kind === 'topic' && rec.received_from && rec.received_from !== rec.from ? ' via ' + fmt.shortID(rec.received_from) : '') }),
        h('span', { class: 'body', text: fmt.payload(kind === 'topic' ? rec.data : rec.payload) })));
      while (list.children.length > TAIL_MAX) list.lastChild.remove();
    }).then(() => {
      if (tailAbort === ctl) {
        status.textContent = 'the stream ended';
        status.dataset.state = 'ended';
        stop();
      }
    }, (e) => {
      if (tailAbort !== ctl) return;
      stop();
      status.textContent = '';
      status.dataset.state = 'error';
      showError($('tail-form'), e, [[/./, 'tail-name']], 'tail-name-error');
    });
    return true; // Start stays disabled while the stream runs
  });
}

// ------------------------------------------------------------ routing

function showLogin(reason) {
  clearTimeout(timer);
  for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'login';
  $('nav').hidden = true;
  const conn = $('conn');
  conn.className = 'conn bad';
  conn.textContent = 'not logged in';
  const out = $('login-refusal');
  if (reason) {
    out.textContent = reason;
    return;
  }
  // Show that the API itself refuses a page without the token.
  api.get('/v1/health').then(() => { out.textContent = 'unexpectedly, the API answered'; },
    (e) => {
      out.textContent = e.status ? `it answered ${e.status} ${e.code}: “${e.message}”` : e.message;
      out.dataset.status = String(e.status);
    });
}

function route() {
  const m = /^#\/(\w+)/.exec(location.hash);
  if (!m && location.hash && location.hash !== '#') return; // an in-page anchor
  const page = m && PAGES.includes(m[1]) ? m[1] : 'overview';
  state.page = page;
  for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + page;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${page[0].toUpperCase() + page.slice(1)} · warren`;
  render();
  return page;
}

function start() {
  api.takeToken();
  $('ov-copy').addEventListener('click', async () => {
    const id = $('ov-id').textContent;
    try {
      await navigator.clipboard.writeText(id);
      $('ov-copied').textContent = 'copied';
    } catch {
      // No clipboard (plain http on some browsers): select it for Ctrl+C.
      const r = document.createRange();
      r.selectNodeContents($('ov-id'));
      getSelection().removeAllRanges();
      getSelection().addRange(r);
      $('ov-copied').textContent = 'selected: press Ctrl+C';
    }
    setTimeout(() => { $('ov-copied').textContent = ''; }, 2500);
  });
  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    $('main').focus();
  });
  if (!api.token()) {
    showLogin();
    return;
  }
  window.addEventListener('hashchange', () => {
    if (route()) document.querySelector(`#page-${state.page} h1`)?.focus();
  });
  setupForms();
  route();
  tick();
}

start();
