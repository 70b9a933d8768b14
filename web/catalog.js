// The public event list: filters, pages, and clear messages for every error.
import { header } from '/app.js';

header();
const list = document.querySelector('#events');
const status = document.querySelector('#status');
const more = document.querySelector('#more');
const form = document.querySelector('#filters');
let nextPage = null;

const money = (cents, currency) =>
  cents == null ? '' : new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(cents / 100);

function query(page) {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (value.trim()) params.set(key, value.trim());
  if (page) params.set('page', page);
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
  const when = new Date(event.start_time).toLocaleString();
  meta.textContent = `${when} · ${event.venue.name}, ${event.venue.city}`;
  const sale = document.createElement('p');
  const badge = document.createElement('span');
  badge.className = 'badge';
  badge.textContent = event.status.replace('_', ' ').toLowerCase();
  sale.append(badge, ` ${event.available} left` + (event.min_price_cents != null ? ` · from ${money(event.min_price_cents, event.currency)}` : ''));
  li.append(h2, meta, sale);
  return li;
}

async function load(page) {
  status.textContent = 'Loading…';
  status.className = '';
  try {
    const response = await fetch(`/api/v1/events?${query(page)}`);
    const body = await response.json();
    if (!response.ok) throw new Error(body?.error?.message ?? `error ${response.status}`);
    if (!page) list.replaceChildren();
    body.events.forEach((e) => list.append(render(e)));
    nextPage = body.next_page;
    more.hidden = nextPage == null;
    status.textContent = list.children.length ? '' : 'No events match.';
  } catch (error) {
    status.textContent = `Could not load events: ${error.message}`;
    status.className = 'error';
  }
}

form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
more.addEventListener('click', () => load(nextPage));
load();
