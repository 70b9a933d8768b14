// The door scanner: reads ticket codes from the camera (jsQR, vendored) or typed in,
// checks them in online, and keeps working offline: the bundle (the event's Ed25519 public
// key, the revoked tickets, the ticket labels) is kept in IndexedDB, a signed code is
// checked with WebCrypto, scans are queued and synced when the network returns.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const eventId = params.get('event');
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get('token')) {
  localStorage.setItem(`scanner:${eventId}`, fragment.get('token'));
  history.replaceState(null, '', `${location.pathname}${location.search}`);
}
const token = localStorage.getItem(`scanner:${eventId}`);
const state = { bundle: null, key: null, revoked: new Set(), labels: new Map(), admitted: new Set(), queue: [], here: 0, conflicts: 0, last: { code: '', at: 0 } };

$('gate').value = localStorage.getItem(`gate:${eventId}`) || 'Main';
$('gate').onchange = () => localStorage.setItem(`gate:${eventId}`, $('gate').value.trim());

function status(text) { $('status').textContent = text; }
function counts() {
  $('admitted').textContent = String(state.here);
  $('queued').textContent = String(state.queue.length);
  $('conflicts').textContent = String(state.conflicts);
}

// IndexedDB: one store, a few keys (the bundle, the queue, the tickets let in offline).
const db = new Promise((resolve, reject) => {
  const open = indexedDB.open('boxoffice-scanner', 1);
  open.onupgradeneeded = () => open.result.createObjectStore('kv');
  open.onsuccess = () => resolve(open.result);
  open.onerror = () => reject(open.error);
});
async function put(key, value) {
  const d = await db;
  await new Promise((resolve, reject) => {
    const tx = d.transaction('kv', 'readwrite');
    tx.objectStore('kv').put(value, `${eventId}:${key}`);
    tx.oncomplete = resolve; tx.onerror = () => reject(tx.error);
  });
}
async function get(key) {
  const d = await db;
  return new Promise((resolve, reject) => {
    const request = d.transaction('kv').objectStore('kv').get(`${eventId}:${key}`);
    request.onsuccess = () => resolve(request.result); request.onerror = () => reject(request.error);
  });
}

function fromBase64url(text) {
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
const uuidOf = (bytes) => { const h = hex(bytes); return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`; };

async function useBundle(bundle) {
  state.bundle = bundle;
  state.key = await crypto.subtle.importKey('raw', fromBase64url(bundle.public_key), { name: 'Ed25519' }, false, ['verify']);
  state.revoked = new Set(bundle.revoked);
  state.labels = new Map(bundle.tickets.map((t) => [t.ticket_id, t]));
  for (const t of bundle.tickets) if (t.status === 'USED') state.admitted.add(t.ticket_id);
}

async function call(path, init = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 4000);
  try {
    const response = await fetch(`/api/v1${path}`, { ...init, signal: controller.signal, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
    const body = await response.json().catch(() => null);
    return { status: response.status, body };
  } finally {
    clearTimeout(timer);
  }
}

async function refreshBundle() {
  try {
    const { status: code, body } = await call(`/events/${eventId}/checkin/bundle`);
    if (code === 200) {
      await put('bundle', body);
      await useBundle(body);
    }
  } catch { /* offline: keep the stored bundle */ }
}

// Offline judgement of a signed code: BX1. + base64url(65-byte payload + 64-byte signature).
async function judgeOffline(code) {
  if (!state.key || !code.startsWith('BX1.')) return { result: 'INVALID', reason: state.key ? 'unreadable offline' : 'no bundle' };
  let bytes;
  try { bytes = fromBase64url(code.slice(4)); } catch { return { result: 'INVALID', reason: 'unreadable' }; }
  if (bytes.length !== 129 || bytes[0] !== 1) return { result: 'INVALID', reason: 'unreadable' };
  const payload = bytes.slice(0, 65);
  const ok = await crypto.subtle.verify({ name: 'Ed25519' }, state.key, bytes.slice(65), payload);
  const event = uuidOf(payload.slice(17, 33));
  if (event !== eventId) return { result: 'WRONG_EVENT' };
  if (!ok) return { result: 'INVALID', reason: 'forged' };
  const ticketId = uuidOf(payload.slice(1, 17));
  const label = state.labels.get(ticketId)?.label;
  if (state.revoked.has(ticketId)) return { result: 'INVALID', ticket_id: ticketId, seat_label: label, reason: 'revoked' };
  if (state.admitted.has(ticketId)) return { result: 'ALREADY_ADMITTED', ticket_id: ticketId, seat_label: label };
  state.admitted.add(ticketId);
  await put('admitted', [...state.admitted]);
  return { result: 'ADMIT', ticket_id: ticketId, seat_label: label };
}

function beep(good) {
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = good ? 880 : 220;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + (good ? 0.15 : 0.5));
  } catch { /* no sound */ }
}

function show(answer, offline) {
  const box = $('result');
  box.hidden = false;
  box.dataset.result = answer.result;
  const words = { ADMIT: 'ADMIT', ALREADY_ADMITTED: 'ALREADY IN', INVALID: 'INVALID', WRONG_EVENT: 'WRONG EVENT' }[answer.result] ?? answer.result;
  const detail = [answer.seat_label, answer.first_scan ? `first in at ${answer.first_scan.gate}, ${new Date(answer.first_scan.at).toLocaleTimeString()}` : '', answer.reason, offline ? 'offline' : ''].filter(Boolean).join(' · ');
  box.textContent = words;
  const small = document.createElement('small');
  small.textContent = detail;
  box.append(small);
  beep(answer.result === 'ADMIT');
}

// The camera sees a code many times a second while it is held up: it is checked once, and
// again only after it has been out of sight for 3 s (else the gate would flash ADMIT, then
// ALREADY IN, for the same person). A typed code is always checked.
function seenByCamera(code) {
  const now = Date.now();
  const again = code === state.last.code && now - state.last.at < 3000;
  state.last = { code, at: now };
  return again;
}

async function check(code, fromCamera = false) {
  code = code.trim();
  if (!code) return;
  if (fromCamera && seenByCamera(code)) return;
  const gate = $('gate').value.trim() || 'Main';
  const nonce = crypto.randomUUID();
  const scannedAt = new Date().toISOString();
  try {
    const { status: code_, body } = await call(`/events/${eventId}/checkins`, { method: 'POST', body: JSON.stringify({ qr: code, gate, nonce, scanned_at: scannedAt }) });
    if (code_ === 200) {
      if (body.result === 'ADMIT') state.here += 1;
      if (body.ticket_id) state.admitted.add(body.ticket_id);
      show(body, false);
      counts();
      return;
    }
    if (code_ > 0 && code_ < 500) {
      show({ result: 'INVALID', reason: body?.error?.message ?? `refused (${code_})` }, false);
      return;
    }
  } catch { /* the network is gone: judge offline */ }
  const answer = await judgeOffline(code);
  if (answer.result === 'ADMIT') {
    state.here += 1;
    state.queue.push({ qr: code, gate, scanned_at: scannedAt, nonce });
    await put('queue', state.queue);
  }
  show(answer, true);
  status('Offline: signed codes are checked here and synced later.');
  counts();
}

async function sync() {
  if (!state.queue.length) return;
  const scans = state.queue.slice(0, 1000);
  try {
    const { status: code, body } = await call(`/events/${eventId}/checkins/sync`, { method: 'POST', body: JSON.stringify({ scans }) });
    if (code !== 200) return;
    const done = new Set(scans.map((s) => s.nonce));
    state.queue = state.queue.filter((s) => !done.has(s.nonce));
    state.conflicts += body.conflicts.length;
    await put('queue', state.queue);
    status(`Online. Synced ${scans.length} offline scan(s).`);
    counts();
  } catch { /* still offline */ }
}

async function camera() {
  const video = $('video');
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  const tick = () => {
    if (video.readyState >= 2 && video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      const found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: 'dontInvert' });
      if (found?.data) check(found.data, true);
    }
    setTimeout(tick, 150);
  };
  tick();
}

async function start() {
  if (!eventId || !token) {
    status('Open this page with the link the organizer\'s dashboard gives for this scanner.');
    return;
  }
  const stored = await get('bundle');
  if (stored) await useBundle(stored);
  state.queue = (await get('queue')) ?? [];
  for (const id of (await get('admitted')) ?? []) state.admitted.add(id);
  await refreshBundle();
  status(state.bundle ? `Ready: ${state.bundle.tickets.length} tickets known.` : 'No bundle yet: online only.');
  counts();
  $('manual').onsubmit = (e) => { e.preventDefault(); check($('code').value); $('code').value = ''; };
  $('camera').onclick = () => camera().catch((error) => status(`Camera: ${error.message}`));
  setInterval(sync, 5000);
  setInterval(refreshBundle, 5 * 60 * 1000);
  window.addEventListener('online', sync);
}

start().catch((error) => status(error.message));
