// The organizer's back office for one event: its venue booking (deposit, add-ons, invoice,
// cancel or request again), the venue's calendar, and the sales report with its charts and
// CSV downloads. Every number comes from the API.
import { api, count, el, header, money, params, say, session, when } from '/app.js';

const $ = (id) => document.getElementById(id);
const eventId = params.get('id');
const message = $('message');
const fail = (error) => say(message, error.message ?? String(error), 'error');
const tell = (text) => say(message, text, 'info');

header('Back office');
let booking = null;
let event = null;

start().catch(fail);

async function start() {
  if (session()?.role !== 'organizer') throw new Error('Sign in as the event\'s organizer.');
  if (!eventId) throw new Error('No event chosen: open this page from the organizer page.');
  event = await api(`/events/${encodeURIComponent(eventId)}`);
  $('title').textContent = event.title;
  document.title = `Back office: ${event.title} — boxoffice`;
  await Promise.all([showBooking(), showReport(), showAudit()]);
  $('audit-more').onclick = () => showAudit(auditNext).catch(fail);
  $('deposit').onsubmit = (e) => { e.preventDefault(); payDeposit(); };
  $('terms').onsubmit = (e) => { e.preventDefault(); saveTerms(); };
  $('add-offer').onclick = () => $('offer-rows').append(offerRow({ kind: 'CATERING', name: '', price_cents: 0 }));
  $('addons').onsubmit = (e) => { e.preventDefault(); saveAddons(); };
  $('invoice-pdf').onclick = () => download(`/bookings/${booking.booking_id}/invoice.pdf`, `invoice-${booking.booking_id}.pdf`);
  $('cancel-booking').onclick = () => act(`/bookings/${booking.booking_id}/cancel`, 'The booking is cancelled: the venue\'s time is free again.');
  $('request-booking').onclick = () => act(`/events/${eventId}/booking`, 'The venue is requested again.');
  $('csv-orders').onclick = () => download(`/events/${eventId}/report.csv?of=orders`, `orders-${eventId}.csv`);
  $('csv-attendees').onclick = () => download(`/events/${eventId}/report.csv?of=attendees`, `attendees-${eventId}.csv`);
}

const price = (cents) => money(cents, booking?.currency ?? event.currency);

async function showBooking() {
  booking = await api(`/events/${eventId}/booking`);
  const state = {
    REQUESTED: `Requested: pay the deposit of ${price(booking.deposit_due_cents)} by ${booking.requested_until ? when(booking.requested_until) : 'soon'} or the venue's time is freed.`,
    CONFIRMED: `Confirmed${booking.deposit_paid_cents ? ` (deposit of ${price(booking.deposit_paid_cents)} paid)` : ''}.`,
    CANCELLED: `Cancelled${booking.cancel_reason === 'LAPSED' ? ': the request lapsed unpaid' : ''}.`,
  }[booking.status];
  $('booking-state').textContent = state;
  $('booking-state').dataset.status = booking.status;
  $('booking-window').textContent = `The venue is taken ${when(booking.blocked_from)} – ${when(booking.blocked_until)} (setup ${booking.setup_hours_before} h, teardown ${booking.teardown_hours_after} h).`;
  $('deposit').hidden = booking.status !== 'REQUESTED';
  $('cancel-booking').hidden = booking.status === 'CANCELLED' || event.status !== 'DRAFT';
  $('request-booking').hidden = booking.status !== 'CANCELLED' || event.status !== 'DRAFT';
  const terms = await api(`/venues/${booking.venue_id}/terms`);
  showTerms(terms);
  const chosen = new Map(booking.addons.map((a) => [a.offer_id, a.quantity]));
  $('addons').hidden = terms.addons.length === 0 || booking.status === 'CANCELLED';
  $('addon-rows').replaceChildren(...terms.addons.map((offer) => el('label', { class: 'inline' },
    el('input', { type: 'number', min: 0, max: 10000, value: chosen.get(offer.offer_id) ?? 0, 'data-offer': offer.offer_id, 'aria-label': `${offer.name}, how many` }),
    ` ${offer.name} — ${price(offer.price_cents)} each`)));
  const invoice = await api(`/bookings/${booking.booking_id}/invoice`);
  $('invoice').querySelector('tbody').replaceChildren(...invoice.lines.map((line) => el('tr', {},
    el('td', {}, line.description), el('td', {}, count(line.quantity)), el('td', {}, price(line.amount_cents)))));
  $('invoice').querySelector('tfoot').replaceChildren(
    el('tr', {}, el('th', { scope: 'row', colspan: 2 }, 'Total'), el('td', {}, price(invoice.total_cents))),
    el('tr', {}, el('th', { scope: 'row', colspan: 2 }, 'Deposit paid'), el('td', {}, price(invoice.deposit_paid_cents))),
    el('tr', {}, el('th', { scope: 'row', colspan: 2 }, 'Balance'), el('td', { id: 'balance' }, price(invoice.balance_cents))));
  const from = new Date();
  const calendar = await api(`/venues/${booking.venue_id}/calendar?from=${encodeURIComponent(from.toISOString())}`);
  $('calendar').replaceChildren(...(calendar.bookings.length ? calendar.bookings.map((b) => el('li', {},
    el('strong', {}, b.title), el('p', { class: 'meta' }, `${when(b.blocked_from)} – ${when(b.blocked_until)} · ${b.status.toLowerCase()}`)))
    : [el('li', {}, 'Nothing booked in the next 90 days.')]));
}

async function payDeposit() {
  const cards = { '4242424242424242': 'tok_ok', '4000000000000002': 'tok_decline', '4000000000000119': 'tok_fail' };
  const digits = $('deposit-card').value.replace(/[\s-]/g, '');
  try {
    await api(`/bookings/${booking.booking_id}/deposit`, {
      method: 'POST',
      body: { payment_token: cards[digits] ?? 'tok_ok' },
      headers: { 'Idempotency-Key': crypto.randomUUID() },
    });
    await showBooking();
    tell('Deposit paid: the booking is confirmed.');
  } catch (error) {
    fail(error);
  }
}

async function saveAddons() {
  const addons = [...$('addon-rows').querySelectorAll('input')]
    .map((input) => ({ offer_id: input.dataset.offer, quantity: Number(input.value) }))
    .filter((a) => a.quantity > 0);
  try {
    await api(`/bookings/${booking.booking_id}/addons`, { method: 'PUT', body: { addons } });
    await showBooking();
    tell('Add-ons saved.');
  } catch (error) {
    fail(error);
  }
}

async function act(path, done) {
  try {
    await api(path, { method: 'POST', body: {} });
    await showBooking();
    tell(done);
  } catch (error) {
    fail(error);
  }
}

// A download that needs the organizer's token: fetched, then handed to the browser.
async function download(path, name) {
  try {
    const response = await fetch(`/api/v1${path}`, { headers: { Authorization: `Bearer ${session().token}` } });
    if (!response.ok) throw new Error(`The download failed (${response.status}).`);
    const url = URL.createObjectURL(await response.blob());
    const link = el('a', { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    fail(error);
  }
}

async function showReport() {
  const report = await api(`/events/${eventId}/report`);
  const t = report.totals;
  const figure = (label, value) => el('div', {}, el('dt', {}, label), el('dd', {}, value));
  const cash = (cents) => money(cents, report.currency);
  $('totals').replaceChildren(
    figure('Tickets sold', count(t.tickets_sold)),
    figure('Orders', count(t.orders)),
    figure('Gross', cash(t.gross_cents)),
    figure('Refunded', cash(t.refunded_cents)),
    figure('Net', cash(t.net_cents)),
    figure('Checked in', count(t.checked_in)),
    figure('Holds now', report.holds_now ? count(report.holds_now.holds) : '–'));
  bars($('per-day'), report.by_day.map((d) => [d.day, d.tickets, `${count(d.tickets)} tickets · ${cash(d.revenue_cents)}`]), 'Tickets sold per day');
  bars($('per-tier'), report.by_section.map((l) => [l.tier ? `${l.section} · ${l.tier}` : l.section, l.revenue_cents, cash(l.revenue_cents)]), 'Revenue per section and tier');
  const f = report.funnel;
  if (f) bars($('funnel'), [['Joined', f.joined, count(f.joined)], ['Admitted', f.admitted, count(f.admitted)], ['Bought', f.bought, count(f.bought)]], 'Waiting room funnel');
  else $('funnel').replaceChildren(el('p', { class: 'meta' }, 'No waiting room is running for this event now.'));
}

/** A horizontal bar chart as SVG: `rows` of [label, value, text]; a table beside it for screen readers. */
function bars(node, rows, title) {
  if (!rows.length) return node.replaceChildren(el('p', { class: 'meta' }, 'Nothing yet.'));
  const NS = 'http://www.w3.org/2000/svg';
  const max = Math.max(1, ...rows.map((r) => r[1]));
  const height = rows.length * 28 + 8;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 600 ${height}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', title);
  svg.classList.add('bars');
  rows.forEach(([label, value, text], i) => {
    const y = 4 + i * 28;
    const make = (tag, attrs, content) => {
      const n = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
      if (content != null) n.textContent = content;
      svg.append(n);
    };
    make('text', { x: 0, y: y + 16, class: 'bar-label' }, String(label));
    make('rect', { x: 200, y, width: Math.max(2, (value / max) * 260), height: 20, rx: 3, class: 'bar' });
    make('text', { x: 206 + (value / max) * 260, y: y + 15, class: 'bar-value' }, text);
  });
  const table = el('table', { class: 'visually-hidden' },
    el('caption', {}, title),
    el('tbody', {}, ...rows.map(([label, , text]) => el('tr', {}, el('th', { scope: 'row' }, String(label)), el('td', {}, text)))));
  node.replaceChildren(svg, table);
}

const clip = (text) => (text.length > 240 ? `${text.slice(0, 240)}…` : text);

// The event's audit log, newest first, a page at a time.
let auditNext = null;
async function showAudit(before = null) {
  const query = new URLSearchParams({ event_id: eventId, limit: 50 });
  if (before) query.set('before', before);
  const log = await api(`/audit?${query}`);
  const change = (entry) => {
    const after = entry.after ?? {};
    return Object.keys(after).map((key) => `${key}: ${entry.before ? `${JSON.stringify(entry.before[key])} → ` : ''}${JSON.stringify(after[key])}`).join('; ');
  };
  const rows = log.entries.map((entry) => el('tr', { 'data-action': entry.action },
    el('td', {}, when(entry.at)),
    el('td', {}, `${entry.actor_email ?? entry.actor_kind.toLowerCase()}${entry.ip ? ` (${entry.ip})` : ''}`),
    el('td', {}, entry.action),
    el('td', { class: 'meta', title: change(entry) }, clip(change(entry)))));
  if (before) $('audit').querySelector('tbody').append(...rows);
  else $('audit').querySelector('tbody').replaceChildren(...rows);
  auditNext = log.next_before;
  $('audit-more').hidden = auditNext == null;
}

// ---- the venue's terms ----

const KINDS = { CATERING: 'Catering', AV_EQUIPMENT: 'AV equipment', PARKING: 'Parking', OTHER: 'Other' };

function offerRow(offer) {
  const kind = el('select', { name: 'kind', 'aria-label': 'Kind' }, ...Object.entries(KINDS).map(([value, text]) => el('option', { value, selected: value === offer.kind }, text)));
  const row = el('div', { class: 'row offer' },
    kind,
    el('label', {}, 'Name', el('input', { name: 'name', value: offer.name, maxlength: 100, required: true })),
    el('label', {}, 'Price', el('input', { name: 'price', type: 'number', min: 0, step: '0.01', value: (offer.price_cents / 100).toFixed(2), required: true })),
    el('button', { type: 'button', class: 'link', onclick: () => row.remove() }, 'Remove'));
  return row;
}

function showTerms(terms) {
  const form = $('terms');
  form.currency.value = terms.currency;
  form.day_rate.value = (terms.day_rate_cents / 100).toFixed(2);
  form.request_hours.value = terms.request_hours;
  const deposit = terms.deposit;
  form.deposit_kind.value = !deposit ? 'none' : deposit.cents != null ? 'fixed' : 'share';
  form.deposit_value.value = !deposit ? '' : deposit.cents != null ? (deposit.cents / 100).toFixed(2) : deposit.percent_of_day_rate;
  $('offer-rows').replaceChildren(...terms.addons.map(offerRow));
}

async function saveTerms() {
  const form = $('terms');
  const cents = (text) => Math.round(Number(text) * 100);
  const kind = form.deposit_kind.value;
  const deposit = kind === 'fixed' ? { cents: cents(form.deposit_value.value) }
    : kind === 'share' ? { percent_of_day_rate: Number(form.deposit_value.value) } : null;
  const addons = [...$('offer-rows').querySelectorAll('.offer')].map((row) => ({
    kind: row.querySelector('[name=kind]').value,
    name: row.querySelector('[name=name]').value,
    price_cents: cents(row.querySelector('[name=price]').value),
  }));
  try {
    const saved = await api(`/venues/${booking.venue_id}/terms`, {
      method: 'PUT',
      body: { currency: form.currency.value, day_rate_cents: cents(form.day_rate.value), deposit, request_hours: Number(form.request_hours.value), addons },
    });
    showTerms(saved);
    tell(`Terms saved: a new booking owes a deposit of ${money(saved.deposit_due_cents, saved.currency)}.`);
  } catch (error) {
    fail(error);
  }
}
