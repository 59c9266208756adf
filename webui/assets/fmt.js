// Human units.

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n) {
  n = Number(n) || 0;
  if (n < 1024) return Math.round(n) + ' B';
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) + ' ' + units[i];
}

export const rate = (n) => bytes(n) + '/s';

export function count(n) {
  n = Number(n) || 0;
  if (n < 10000) return String(Math.round(n));
  const s = ['', 'k', 'M', 'G', 'T'];
  let i = 0;
  while (n >= 1000 && i < s.length - 1) { n /= 1000; i++; }
  return (n >= 100 ? n.toFixed(0) : n.toFixed(1)) + s[i];
}

export function perSec(n) {
  n = Number(n) || 0;
  if (n === 0) return '0/s';
  if (n < 1) return n.toFixed(2) + '/s';
  if (n < 10) return n.toFixed(1) + '/s';
  return count(n) + '/s';
}

export function duration(sec) {
  sec = Math.max(0, Math.floor(Number(sec) || 0));
  const d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24, m = Math.floor(sec / 60) % 60, s = sec % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

export function ms(v) {
  v = Number(v) || 0;
  if (v <= 0) return '—';
  if (v < 1) return (v * 1000).toFixed(0) + ' µs';
  if (v < 100) return v.toFixed(1) + ' ms';
  if (v < 10000) return v.toFixed(0) + ' ms';
  return (v / 1000).toFixed(1) + ' s';
}

export function clock(t) {
  const d = t instanceof Date ? t : new Date(t);
  if (isNaN(d)) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

// shortID abbreviates a peer ID: 12D3KooW…Ab3xYz.
export function shortID(id) {
  id = String(id || '');
  return id.length > 20 ? id.slice(0, 8) + '…' + id.slice(-6) : id;
}

// payload renders a base64 payload as text when it is UTF-8 without
// control characters, else as a size and hex prefix.
export function payload(b64, max = 400) {
  let raw;
  try { raw = atob(b64 || ''); } catch { return '(undecodable payload)'; }
  const u8 = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(u8);
    if (!/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text)) {
      return text.length > max ? text.slice(0, max) + '… (' + bytes(u8.length) + ')' : text;
    }
  } catch { /* binary */ }
  const hex = Array.from(u8.slice(0, 24), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `(${bytes(u8.length)} binary) ${hex}${u8.length > 24 ? ' …' : ''}`;
}

// b64 encodes text as UTF-8 base64.
export function b64(text) {
  const u8 = new TextEncoder().encode(text);
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(s);
}
