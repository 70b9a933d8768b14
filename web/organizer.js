// The organizer's pages: venues with the layout generator (and its seat map), events,
// prices, the on-sale and its waiting room, publishing.
import { api, el, header, money, say, session, when } from '/app.js';
import { drawSeatMap } from '/seatmap.js';
import { webhooksPanel } from '/webhooks.js';

const $ = (id) => document.getElementById(id);
const message = $('message');
const fail = (error) => { say(message, error.message, 'error'); message.scrollIntoView({ block: 'center' }); };
const tell = (text) => say(message, text, 'info');
const iso = (local) => (local ? new Date(local).toISOString() : null);
const local = (date) => {
  const d = new Date(date);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 16);
};

header('Organizer');
const me = session();
if (!me || me.role !== 'organizer') {
  location.href = `/account.html?next=${encodeURIComponent('/organizer.html')}`;
} else {
  $('timezone').value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  addSection({ name: 'Orchestra', kind: 'seated', rows: 8, seats_per_row: 12 });
  addSection({ name: 'Floor', kind: 'general_admission', capacity: 200 });
  $('add-section').onclick = () => addSection({ name: `Section ${$('layout-rows').children.length + 1}`, kind: 'seated', rows: 5, seats_per_row: 10 });
  $('preview').onclick = preview;
  $('new-venue').onsubmit = createVenue;
  $('new-event').onsubmit = createEvent;
  webhooksPanel(fail);
  const start = new Date(Date.now() + 30 * 86400e3);
  start.setHours(20, 0, 0, 0);
  $('new-event').start_time.value = local(start);
  $('new-event').end_time.value = local(start.getTime() + 3 * 3600e3);
  refresh().catch(fail);
}

let venues = [];
let events = [];
let current = null;

async function refresh() {
  [{ venues }, { events }] = await Promise.all([api('/venues'), api('/organizer/events')]);
  $('venues').replaceChildren(...(venues.length ? venues.map((v) => el('li', {},
    el('strong', {}, v.name), el('p', { class: 'meta' }, `${v.city} · ${v.capacity} places · ${v.sections.map((s) => s.name).join(', ')}`))) : [el('li', {}, 'No venues yet: create one below.')]));
  $('venue-select').replaceChildren(...venues.filter((v) => v.is_active).map((v) => el('option', { value: v.venue_id }, `${v.name} (${v.city})`)));
  $('events').replaceChildren(...(events.length ? events.map((e) => el('li', { 'data-event': e.event_id },
    el('strong', {}, e.title),
    el('p', { class: 'meta' }, `${when(e.start_time)} · ${e.venue.name} · ${e.status.toLowerCase().replace('_', ' ')}${e.onsale ? ` · sale opens ${when(e.onsale.sale_starts_at)}` : ''}`),
    el('p', { class: 'row' },
      el('button', { type: 'button', class: 'secondary', onclick: () => setUp(e) }, 'Set up'),
      el('a', { href: `/dashboard.html?id=${e.event_id}` }, 'Dashboard'),
      el('a', { href: `/backoffice.html?id=${e.event_id}` }, 'Booking & sales'),
      el('a', { href: `/event.html?id=${e.event_id}` }, 'Event page')))) : [el('li', {}, 'No events yet.')]));
}

// ---- venues and the layout generator ----

function addSection(section) {
  const row = el('div', { class: 'row layout-row' },
    el('label', {}, 'Section name', el('input', { name: 's_name', value: section.name, required: true })),
    el('label', {}, 'Kind', el('select', { name: 's_kind', onchange: (e) => toggle(row, e.target.value) },
      el('option', { value: 'seated', selected: section.kind === 'seated' }, 'Seated'),
      el('option', { value: 'general_admission', selected: section.kind === 'general_admission' }, 'Standing'))),
    el('label', { class: 'seated' }, 'Rows', el('input', { name: 's_rows', type: 'number', min: 1, value: section.rows ?? 5 })),
    el('label', { class: 'seated' }, 'Seats per row', el('input', { name: 's_per_row', type: 'number', min: 1, value: section.seats_per_row ?? 10 })),
    el('label', { class: 'standing' }, 'Capacity', el('input', { name: 's_capacity', type: 'number', min: 1, value: section.capacity ?? 100 })),
    el('button', { type: 'button', class: 'secondary', 'aria-label': 'Remove this section', onclick: () => row.remove() }, 'Remove'),
  );
  toggle(row, section.kind);
  $('layout-rows').append(row);
}

function toggle(row, kind) {
  row.querySelectorAll('.seated').forEach((n) => { n.hidden = kind !== 'seated'; });
  row.querySelectorAll('.standing').forEach((n) => { n.hidden = kind === 'seated'; });
}

function layout() {
  return {
    sections: [...$('layout-rows').children].map((row) => {
      const value = (name) => row.querySelector(`[name=${name}]`).value;
      const kind = value('s_kind');
      return kind === 'seated'
        ? { name: value('s_name'), kind, rows: Number(value('s_rows')), seats_per_row: Number(value('s_per_row')) }
        : { name: value('s_name'), kind, capacity: Number(value('s_capacity')) };
    }),
  };
}

async function preview() {
  try {
    const plan = await api('/venues/preview', { method: 'POST', body: { layout: layout() } });
    $('preview-text').textContent = `${plan.capacity} places: ${plan.sections.map((s) => `${s.name} ${s.capacity}`).join(', ')}`;
    drawSeatMap($('preview-map'), plan.sections.map((s) => ({
      ...s,
      seats: s.seats.map((seat, i) => ({ ...seat, id: `${s.name}-${i}`, state: 'available', price_cents: null })),
    })), { interactive: false });
    say(message, '');
  } catch (error) {
    fail(error);
  }
}

async function createVenue(e) {
  e.preventDefault();
  const form = e.target;
  const body = {
    name: form.name.value, address: form.address.value, city: form.city.value,
    latitude: Number(form.latitude.value), longitude: Number(form.longitude.value),
    timezone: form.timezone.value, venue_type: form.venue_type.value, layout: layout(),
  };
  try {
    const venue = await api('/venues', { method: 'POST', body });
    tell(`Venue "${body.name}" created: ${venue.capacity} places.`);
    await refresh();
    $('venue-select').value = venue.venue_id;
  } catch (error) {
    fail(error);
  }
}

// ---- events ----

async function createEvent(e) {
  e.preventDefault();
  const form = e.target;
  const body = {
    venue_id: form.venue_id.value, title: form.title.value, category: form.category.value,
    description: form.description.value,
    performers: form.performers.value.split(',').map((p) => p.trim()).filter(Boolean),
    start_time: iso(form.start_time.value), end_time: iso(form.end_time.value),
  };
  if (!body.venue_id) return fail(new Error('Create a venue first.'));
  try {
    const created = await api('/events', { method: 'POST', body });
    tell(`Event "${body.title}" created as a draft: set its prices and on-sale below.`);
    await refresh();
    setUp(events.find((x) => x.event_id === created.event_id));
  } catch (error) {
    fail(error);
  }
}

function setUp(event) {
  if (!event) return;
  current = event;
  $('setup').hidden = false;
  $('setup-title').textContent = `“${event.title}”`;
  $('dashboard-link').href = `/dashboard.html?id=${event.event_id}`;
  const rows = event.sections.map((s) => {
    const tier = event.tiers.find((t) => t.section_id === s.section_id);
    const cents = s.price_cents ?? tier?.price_cents;
    return el('div', { class: 'row', 'data-section': s.section_id, 'data-kind': s.kind },
      el('span', { class: 'label' }, `${s.name} (${s.kind === 'seated' ? `${s.capacity} seats` : `${s.capacity} standing`})`),
      el('label', {}, 'Price', el('input', { name: 'price', type: 'number', min: 0, step: '0.01', value: cents != null ? (cents / 100).toFixed(2) : '', required: true })),
      s.kind === 'seated' ? null : el('label', {}, 'Ticket name', el('input', { name: 'tier', value: tier?.name ?? 'General admission' })),
    );
  });
  $('price-rows').replaceChildren(...rows);
  $('pricing').currency.value = event.currency ?? 'USD';
  $('pricing').onsubmit = savePricing;
  const form = $('onsale');
  const sale = event.onsale;
  const opens = new Date(Date.now() + 3600e3);
  form.sale_starts_at.value = local(sale?.sale_starts_at ?? opens);
  form.sale_ends_at.value = local(sale?.sale_ends_at ?? event.start_time);
  form.hold_minutes.value = sale?.hold_minutes ?? 10;
  form.max_per_order.value = sale?.max_per_order ?? 6;
  form.room.checked = sale ? sale.waiting_room != null : true;
  form.queue_opens_at.value = local(sale?.waiting_room?.queue_opens_at ?? new Date(opens.getTime() - 1800e3));
  form.admission_per_minute.value = sale?.waiting_room?.admission_per_minute ?? 600;
  form.proof_of_work.value = sale?.waiting_room?.proof_of_work ?? 'off';
  form.proof_of_work_joins_per_minute.value = sale?.waiting_room?.proof_of_work_joins_per_minute ?? 3000;
  const roomFields = () => { $('room-fields').hidden = $('door-fields').hidden = !form.room.checked; };
  form.room.onchange = roomFields;
  roomFields();
  form.onsubmit = saveOnSale;
  $('publish').hidden = event.status !== 'DRAFT';
  $('publish').onclick = publish;
  $('setup').scrollIntoView();
}

async function savePricing(e) {
  e.preventDefault();
  const sections = [];
  const tiers = [];
  const maxPerOrder = Number($('onsale').max_per_order.value) || 6;
  for (const row of $('price-rows').children) {
    const cents = Math.round(Number(row.querySelector('[name=price]').value) * 100);
    const section_id = row.dataset.section;
    if (row.dataset.kind === 'seated') sections.push({ section_id, price_cents: cents });
    else {
      const section = current.sections.find((s) => s.section_id === section_id);
      tiers.push({ section_id, name: row.querySelector('[name=tier]').value, price_cents: cents, quantity: section.capacity, max_per_order: maxPerOrder });
    }
  }
  try {
    await api(`/events/${current.event_id}/pricing`, { method: 'PUT', body: { sections, tiers, currency: e.target.currency.value.toUpperCase() } });
    tell(`Prices saved (from ${money(Math.min(...[...sections, ...tiers].map((p) => p.price_cents)), e.target.currency.value.toUpperCase())}).`);
    await reload();
  } catch (error) {
    fail(error);
  }
}

async function saveOnSale(e) {
  e.preventDefault();
  const form = e.target;
  const body = {
    sale_starts_at: iso(form.sale_starts_at.value), sale_ends_at: iso(form.sale_ends_at.value),
    hold_minutes: Number(form.hold_minutes.value), max_per_order: Number(form.max_per_order.value),
    waiting_room: form.room.checked
      ? {
        queue_opens_at: iso(form.queue_opens_at.value), admission_per_minute: Number(form.admission_per_minute.value),
        proof_of_work: form.proof_of_work.value, proof_of_work_joins_per_minute: Number(form.proof_of_work_joins_per_minute.value),
      }
      : null,
  };
  try {
    await api(`/events/${current.event_id}/onsale`, { method: 'PUT', body });
    tell(`On-sale scheduled: ${when(body.sale_starts_at)} to ${when(body.sale_ends_at)}${body.waiting_room ? `, line opens ${when(body.waiting_room.queue_opens_at)}` : ''}.`);
    await reload();
  } catch (error) {
    fail(error);
  }
}

async function publish() {
  try {
    await api(`/events/${current.event_id}/publish`, { method: 'POST', body: {} });
    tell(`"${current.title}" is published.`);
    await reload();
  } catch (error) {
    fail(error);
  }
}

async function reload() {
  const id = current.event_id;
  await refresh();
  const event = events.find((x) => x.event_id === id);
  if (event) {
    current = event;
    $('publish').hidden = event.status !== 'DRAFT';
  }
}
