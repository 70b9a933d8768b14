// The public event list: search with results as you type, filters (dates, price, distance
// from "my location", tickets left), sorts, cursor pages, and what sells fast today.
import { header, session } from '/app.js';

header();
const list = document.querySelector('#events');
const status = document.querySelector('#status');
const more = document.querySelector('#more');
const form = document.querySelector('#filters');
const suggestions = document.querySelector('#suggestions');
let nextCursor = null;
let near = null;
let typing = null;

const money = (cents, currency) =>
  cents == null ? '' : new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(cents / 100);
const when = (iso) => new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));

function query(cursor) {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form)) {
    const v = String(value).trim();
    if (!v) continue;
    if (key === 'max_price') params.set('max_price_cents', String(Math.round(Number(v) * 100)));
    else if (key === 'within_km' && !near) continue;
    else params.set(key, v);
  }
  if (near) params.set('near', `${near.lat},${near.lng}`);
  if (params.get('sort') === 'distance' && !near) params.delete('sort');
  if (cursor) params.set('cursor', cursor);
  return params;
}

function render(event) {
  const li = document.createElement('li');
  const h2 = document.createElement('h2');
  const link = document.createElement('a');
  link.href = `/event.html?id=${event.event_id}`;
  link.textContent = event.title;
  h2.append(link);
  const meta = document.createElement('p');
  meta.className = 'meta';
  const distance = event.distance_km != null ? ` · ${new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 }).format(event.distance_km)} km` : '';
  meta.textContent = `${when(event.start_time)} · ${event.venue.name}, ${event.venue.city}${distance}`;
  const sale = document.createElement('p');
  const badge = document.createElement('span');
  badge.className = 'badge';
  badge.textContent = event.status.replace('_', ' ').toLowerCase();
  sale.append(badge, ` ${event.available} left` + (event.min_price_cents != null ? ` · from ${money(event.min_price_cents, event.currency)}` : ''));
  if (event.performers?.length) {
    const who = document.createElement('p');
    who.className = 'meta';
    who.textContent = event.performers.join(', ');
    li.append(h2, who, meta, sale);
  } else li.append(h2, meta, sale);
  return li;
}

async function load(cursor) {
  status.textContent = 'Loading…';
  status.className = '';
  try {
    const response = await fetch(`/api/v1/events?${query(cursor)}`, { headers: authHeaders() });
    const body = await response.json();
    if (!response.ok) throw new Error(body?.error?.message ?? `error ${response.status}`);
    if (!cursor) list.replaceChildren();
    body.events.forEach((e) => list.append(render(e)));
    nextCursor = body.next_cursor;
    more.hidden = nextCursor == null;
    status.textContent = list.children.length ? '' : 'No events match.';
    if (!cursor) suggest(body.events);
  } catch (error) {
    status.textContent = `Could not load events: ${error.message}`;
    status.className = 'error';
  }
}

// Signed-in buyers see their own kind of event first.
function authHeaders() {
  const token = session()?.token;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function suggest(events) {
  const seen = new Set();
  suggestions.replaceChildren(...events.flatMap((e) => [e.title, ...(e.performers ?? [])])
    .filter((t) => !seen.has(t) && seen.add(t)).slice(0, 8)
    .map((t) => Object.assign(document.createElement('option'), { value: t })));
}

async function trending() {
  try {
    const response = await fetch('/api/v1/trending');
    if (!response.ok) return;
    const body = await response.json();
    if (!body.events.length) return;
    document.querySelector('#trending').replaceChildren(...body.events.map((e) => {
      const li = document.createElement('li');
      const a = Object.assign(document.createElement('a'), { href: `/event.html?id=${e.event_id}`, textContent: e.title });
      li.append(a, ` · ${e.city} · ${e.sold_24h} sold today`);
      return li;
    }));
    document.querySelector('#trending-box').hidden = false;
  } catch { /* the list below is what matters */ }
}

form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
form.q.addEventListener('input', () => {
  clearTimeout(typing);
  typing = setTimeout(() => load(), 250);
});
form.addEventListener('change', (e) => { if (e.target.name !== 'q') load(); });
document.querySelector('#near-me').addEventListener('click', () => {
  if (!navigator.geolocation) { status.textContent = 'This browser cannot tell where you are.'; return; }
  navigator.geolocation.getCurrentPosition((position) => {
    near = { lat: position.coords.latitude.toFixed(4), lng: position.coords.longitude.toFixed(4) };
    document.querySelector('#near-me').textContent = 'Near me ✓';
    if (!form.sort.value) form.sort.value = 'distance';
    load();
  }, () => { status.textContent = 'Your location was not shared.'; });
});
more.addEventListener('click', () => load(nextCursor));
load();
trending();
