// The event page: details, the live seat map, the waiting room, holds, checkout and the
// tickets. Every state the buyer sees comes from the API; every error gets a message.
import { api, ApiError, clock, count, el, header, money, params, say, session, socketUrl, when, whenAt } from '/app.js';
import { drawSeatMap } from '/seatmap.js';
import { ticketCard } from '/tickets.js';
import { waitingRoom } from '/room.js';
import { waitlist } from '/waitlist.js';

const $ = (id) => document.getElementById(id);
const eventId = params.get('id');
const message = $('message');
const me = session();

let event;
let map;
let sections = [];
let chosen = new Set();
let room = null; // the waiting room: the line, and the admission once let in
let hold = null;
let holdTimer = null;
let windowTimer = null;
let checkoutKey = null;
let busy = null; // the hold this tab is paying for or releasing (its own news is not news)
let waiting = null; // the waitlist panel

const currency = () => event?.currency ?? 'USD';
const price = (cents) => money(cents, currency());
const fail = (error) => say(message, error instanceof ApiError ? error.message : String(error.message ?? error), 'error');
const tell = (text) => say(message, text, 'info');
const clear = () => say(message, '');

header();
start().catch(fail);

async function start() {
  if (!eventId) throw new Error('No event chosen: go back to the event list.');
  const [detail, seatmap] = await Promise.all([
    api(`/events/${encodeURIComponent(eventId)}`),
    api(`/events/${encodeURIComponent(eventId)}/seatmap`),
  ]);
  event = detail;
  showDetails();
  sections = seatmap.sections.map((s) => ({
    ...s,
    seats: s.rows.flatMap((row) => row.seats.map((seat) => ({ ...seat, id: seat.seat_id }))),
  }));
  $('map').hidden = false; // shown first, so the map is drawn at its width
  map = drawSeatMap($('map'), sections, { onPick: pick, onStanding: standing, priceLabel: price });
  $('map').seatMap = map; // for the browser tests: where a seat is on the screen
  waiting = waitlist({
    eventId,
    event,
    sections,
    signedIn: me?.role === 'buyer',
    fail,
    take: (offered) => { hold = offered; showHold(); },
  });
  showCounts(event.sections, event.tiers);
  watchMap();
  setUpShop();
  room = waitingRoom({ eventId, event, me, fail, onAdmitted: openShop });
  await room.claim();
  if (event.onsale?.waiting_room && !room.admission()) room.show();
  else openShop();
  await restoreHold();
}

// A hold made before a reload, or in another tab, is shown again with its countdown.
async function restoreHold() {
  if (me?.role !== 'buyer' || hold) return;
  const { holds } = await api(`/me/holds?event_id=${encodeURIComponent(eventId)}`);
  const live = holds.find((h) => !h.offer_id) ?? null; // (offers are shown by the waitlist)
  if (live && !hold) takeHold(live);
}

// Shows `live` as the buyer's hold (news of one the page did not make: another tab's).
function takeHold(live) {
  $('room').hidden = true;
  hold = live;
  for (const seat of hold.seats ?? []) map.setState(seat.seat_id, 'held');
  showHold();
  if (hold.status === 'PAYMENT_PENDING') $('countdown-note').textContent = 'A payment for these seats is in progress.';
}

function showDetails() {
  $('loading').hidden = true;
  $('details').hidden = false;
  $('title').textContent = event.title;
  document.title = `${event.title} — boxoffice`;
  $('when').textContent = `${whenAt(event.start_time, event.venue.timezone)} · ${event.venue.name}, ${event.venue.city}`;
  $('description').textContent = event.description ?? '';
  const sale = event.onsale;
  $('sale').textContent = sale
    ? `On sale ${when(sale.sale_starts_at)} – ${when(sale.sale_ends_at)} · holds last ${sale.hold_minutes} min · up to ${sale.max_per_order} per order`
    : 'Not on sale yet.';
  const policy = event.refund_policy;
  $('policy').textContent = policy?.buyers_may_cancel_until
    ? `You may cancel your order until ${when(policy.buyers_may_cancel_until)}${policy.fee_cents || policy.fee_percent ? `, less a fee of ${price(policy.fee_cents)}${policy.fee_percent ? ` and ${policy.fee_percent} %` : ''}` : ''}.`
    : 'Orders cannot be cancelled by buyers (the organizer refunds them if the event is cancelled).';
  $('overview').hidden = false;
}

// The section table and the tier choice, built once and then only their counts changed:
// this runs for every live-map frame, which must not cost a page layout each time.
let leftCells = null;
function showCounts(sectionCounts = [], tierCounts = []) {
  for (const given of sectionCounts) {
    const section = sections.find((s) => s.section_id === given.section_id);
    if (section) section.available = given.available;
  }
  for (const given of tierCounts) {
    const tier = event.tiers.find((t) => t.tier_id === given.tier_id);
    if (tier) tier.available = given.available;
  }
  const tiersOf = (s) => event.tiers.filter((t) => t.section_id === s.section_id);
  if (!leftCells) {
    leftCells = new Map();
    $('sections').replaceChildren(...sections.map((s) => {
      const tiers = tiersOf(s);
      const cost = s.price_cents != null ? price(s.price_cents) : tiers.map((t) => `${t.name} ${price(t.price_cents)}`).join(', ');
      const name = s.kind === 'seated'
        ? el('button', { type: 'button', class: 'link', onclick: () => { map.zoomTo(s.section_id); $('map').scrollIntoView({ block: 'nearest' }); } }, s.name)
        : s.name;
      const cell = el('td', { class: 'left' });
      leftCells.set(s.section_id, cell);
      return el('tr', { 'data-section': s.section_id }, el('th', { scope: 'row' }, name), el('td', {}, cost || '—'), cell);
    }));
    $('tier').replaceChildren(...event.tiers.map((t) => el('option', { value: t.tier_id })));
  }
  for (const s of sections) {
    const tiers = tiersOf(s);
    const left = tiers.length ? tiers.reduce((n, t) => n + t.available, 0) : (s.available ?? s.capacity);
    setText(leftCells.get(s.section_id), left ? count(left) : 'sold out');
  }
  [...$('tier').options].forEach((option, i) => {
    const t = event.tiers[i];
    option.disabled = t.available === 0;
    setText(option, `${t.name} — ${price(t.price_cents)} (${count(t.available)} left)`);
  });
  waiting?.refresh();
}

function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

// The live map: a snapshot, then numbered deltas; a gap or a lost socket resyncs.
function watchMap() {
  let seq = null;
  let retry = 500;
  const connect = () => {
    const query = new URLSearchParams();
    if (seq != null) query.set('since', seq);
    if (me?.token) query.set('token', me.token);
    const socket = new WebSocket(socketUrl(`/events/${eventId}/live?${query}`));
    socket.onopen = () => { retry = 500; $('live-state').textContent = '· live'; };
    socket.onmessage = (e) => {
      const frame = JSON.parse(e.data);
      if (frame.type === 'snapshot') {
        seq = frame.seq;
        $('map').dataset.seq = seq; // the map is live from here
        for (const packed of frame.sections) {
          const section = sections.find((s) => s.section_id === packed.section_id);
          if (section && packed.states != null) map.setSection(section, packed.states);
        }
        showCounts(frame.sections, frame.tiers);
        refreshChosen();
      } else if (frame.type === 'delta') {
        seq = frame.seq;
        for (const change of frame.changes) map.setState(change.seat_id, change.state);
        showCounts(frame.sections, frame.tiers);
        refreshChosen();
      } else if (frame.type === 'hold') {
        holdNews(frame);
        waiting?.news(frame);
      }
    };
    socket.onclose = (e) => {
      $('live-state').textContent = '· reconnecting…';
      if (e.code === 4404 || e.reason === 'event_closed') {
        $('live-state').textContent = '· the sale is closed';
        return;
      }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  };
  connect();
}

// ---- shopping ----

function setUpShop() {
  const max = event.onsale?.max_per_order ?? 1;
  $('max').textContent = String(max);
  $('best-qty').max = String(max);
  $('tier-qty').max = String(max);
  for (const s of sections.filter((s) => s.kind === 'seated')) $('best-section').append(el('option', { value: s.section_id }, s.name));
  for (const cents of map.prices) $('best-price').append(el('option', { value: cents }, price(cents)));
  $('best-price').closest('label').hidden = map.prices.length < 2;
  $('tiers').hidden = event.tiers.length === 0;
  $('best').hidden = !sections.some((s) => s.kind === 'seated');
  $('hold-chosen').onclick = () => makeHold({ seat_ids: [...chosen] });
  $('best').onsubmit = (e) => {
    e.preventDefault();
    const request = { quantity: Number($('best-qty').value) };
    if ($('best-section').value) request.section_id = $('best-section').value;
    if ($('best-price').value) request.price_cents = Number($('best-price').value);
    makeHold({ best_available: request });
  };
  $('tiers').onsubmit = (e) => {
    e.preventDefault();
    makeHold({ tier_id: $('tier').value, quantity: Number($('tier-qty').value) });
  };
  $('pay').onsubmit = (e) => { e.preventDefault(); pay(); };
  $('release').onclick = release;
}

function openShop() {
  if (!event.onsale) return;
  $('shop').hidden = false;
  clearInterval(windowTimer);
  const admission = room.admission();
  if (admission) {
    const tick = () => {
      const left = (new Date(admission.expires_at) - Date.now()) / 1000;
      $('window').textContent = left > 0 ? `Your shopping time: ${clock(left)} left.` : 'Your shopping time is over.';
      if (left <= 0) {
        clearInterval(windowTimer);
        room.forget();
        if (!hold) { $('shop').hidden = true; room.show(); fail(new Error('Your shopping time ran out. Join the line again.')); }
      }
    };
    tick();
    windowTimer = setInterval(tick, 1000);
  }
  if (!me && admission) signInToBuy(new ApiError(401, { error: { code: 'sign_in_required' } }));
  else if (!me) tell('Sign in as a buyer to hold seats.');
}

// A standing section tapped on the map: its tickets are chosen in the tier form.
function standing(section) {
  const tier = event.tiers.find((t) => t.section_id === section.section_id && t.available > 0)
    ?? event.tiers.find((t) => t.section_id === section.section_id);
  if (!tier) return tell(`${section.name} is not on sale.`);
  $('tier').value = tier.tier_id;
  if ($('shop').hidden) return tell(`${section.name}: ${tier.name} at ${price(tier.price_cents)}, ${count(tier.available)} left.`);
  $('tier').focus();
}

function pick(seat) {
  if (hold) return tell('You already hold seats: pay for them or release them first.');
  if (chosen.has(seat.id)) {
    chosen.delete(seat.id);
    map.mark(seat.id, false);
  } else if (seat.state !== 'available') {
    return tell(`${seat.label} is ${seat.state}: pick an available seat.`);
  } else if (chosen.size >= (event.onsale?.max_per_order ?? 1)) {
    return tell(`You can choose up to ${event.onsale.max_per_order} seats per order.`);
  } else {
    chosen.add(seat.id);
    map.mark(seat.id, true);
  }
  clear();
  refreshChosen();
}

// Seats someone else took since they were chosen are dropped from the choice.
function refreshChosen() {
  for (const id of [...chosen]) {
    const entry = map.entry(id);
    if (entry && entry.seat.state !== 'available') {
      chosen.delete(id);
      map.mark(id, false);
      tell(`${entry.seat.label} was just taken by someone else.`);
    }
  }
  const labels = [...chosen].map((id) => map.entry(id)?.seat.label).filter(Boolean);
  $('chosen-text').textContent = labels.length ? `Chosen: ${labels.join(', ')}` : 'No seats chosen yet.';
  $('hold-chosen').disabled = labels.length === 0 || hold != null;
}

const admissionHeaders = () => room.headers();

async function makeHold(request) {
  clear();
  if (!me) return signInToBuy(new ApiError(401, { error: { code: room.visiting() ? 'sign_in_required' : 'unauthorized' } }));
  try {
    hold = await api(`/events/${eventId}/holds`, { method: 'POST', body: request, headers: admissionHeaders() });
    for (const id of chosen) map.mark(id, false);
    chosen = new Set();
    for (const seat of hold.seats ?? []) map.setState(seat.seat_id, 'held');
    showHold();
  } catch (error) {
    if (error.code === 'admission_invalid' || error.code === 'admission_required') {
      room.forget();
      if (event.onsale?.waiting_room) { $('shop').hidden = true; room.show(); }
    }
    if (error.code === 'unauthorized' || error.code === 'sign_in_required') return signInToBuy(error);
    if (error.code === 'seat_unavailable') {
      for (const id of error.details.seat_ids ?? []) map.setState(id, 'held');
      refreshChosen();
    }
    fail(error);
  }
}

// The sign-in step, from where the buyer was: back here afterwards, in the same place.
// (A next step, not a failure: said as a plain notice.)
function signInToBuy(error) {
  say(message, error.message);
  const next = encodeURIComponent(location.pathname + location.search);
  message.append(' ', el('a', { href: `/account.html?next=${next}` }, 'Sign in or create an account'));
}

function showHold() {
  $('shop').hidden = true;
  $('hold').hidden = false;
  checkoutKey = sessionStorage.getItem(checkoutKeyOf(hold.hold_id)) ?? crypto.randomUUID();
  sessionStorage.setItem(checkoutKeyOf(hold.hold_id), checkoutKey);
  const seats = hold.seats?.length
    ? hold.seats.map((s) => el('li', {}, `${s.label} — ${price(s.price_cents)}`))
    : [el('li', {}, `${hold.quantity} × ${hold.tier?.name ?? 'ticket'}`)];
  $('held-seats').replaceChildren(...seats);
  $('total').textContent = money(hold.total_cents, hold.currency);
  $('countdown-note').textContent = '';
  clearInterval(holdTimer);
  const tick = () => {
    const left = (new Date(hold.expires_at) - Date.now()) / 1000;
    $('countdown').textContent = left > 0 ? `${clock(left)} left to pay` : 'Time is up';
    if (left <= 0) holdGone('Your hold expired and the seats went back on sale. Pick again.');
  };
  tick();
  holdTimer = setInterval(tick, 1000);
  $('card').focus();
}

// The checkout's idempotency key, kept per hold for this tab: paying again after a reload
// is the same attempt (never a second charge).
const checkoutKeyOf = (holdId) => `boxoffice.checkout.${holdId}`;

async function holdNews(frame) {
  if (frame.hold_id === busy) return;
  if (!hold) {
    // A hold the page does not show: placed before a reload or in another tab.
    if (frame.status === 'HELD' || frame.status === 'PAYMENT_PENDING') {
      const live = await api(`/holds/${frame.hold_id}`).catch(() => null);
      if (live && !hold && !live.offer_id) takeHold(live);
    }
    return;
  }
  if (frame.hold_id !== hold.hold_id) return;
  if (frame.status === 'EXPIRING_SOON') $('countdown-note').textContent = 'Less than a minute left: pay now to keep your seats.';
  else if (frame.status === 'EXPIRED') holdGone('Your hold expired and the seats went back on sale. Pick again.');
  else if (frame.status === 'RELEASED') holdGone('The seats were released (in another tab or window).');
  else if (frame.status === 'PAYMENT_PENDING') $('countdown-note').textContent = 'A payment for these seats is in progress.';
  else if (frame.status === 'HELD') { hold.expires_at = frame.expires_at; $('countdown-note').textContent = ''; }
  else if (frame.status === 'CONFIRMED' && frame.order_id) {
    const order = await api(`/orders/${frame.order_id}`).catch(() => null);
    if (!order || hold?.hold_id !== frame.hold_id) return;
    clearInterval(holdTimer);
    hold = null;
    showOrder(order);
  }
}

function holdGone(text) {
  if (hold) sessionStorage.removeItem(checkoutKeyOf(hold.hold_id));
  clearInterval(holdTimer);
  hold = null;
  $('hold').hidden = true;
  openShop();
  refreshChosen();
  fail(new Error(text));
}

// The simulated processor's test cards, as a card form would tokenize them.
const TEST_CARDS = {
  '4242424242424242': 'tok_ok',
  '4000000000000002': 'tok_decline',
  '4000000000009995': 'tok_insufficient_funds',
  '4000000000000119': 'tok_fail',
};

function luhn(digits) {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return sum % 10 === 0;
}

async function pay() {
  clear();
  const digits = $('card').value.replace(/[\s-]/g, '');
  if (!/^\d{12,19}$/.test(digits) || !luhn(digits)) {
    $('card').setAttribute('aria-invalid', 'true');
    return fail(new Error('That card number is not valid: check the digits (see the test cards below).'));
  }
  $('card').removeAttribute('aria-invalid');
  const token = TEST_CARDS[digits] ?? 'tok_ok';
  const button = $('pay-button');
  button.disabled = true;
  button.textContent = 'Paying…';
  const paying = hold;
  busy = paying.hold_id;
  try {
    const order = await api(`/holds/${paying.hold_id}/checkout`, {
      method: 'POST',
      body: { payment_token: token },
      headers: { 'Idempotency-Key': checkoutKey, ...admissionHeaders() },
    });
    clearInterval(holdTimer);
    clearInterval(windowTimer);
    sessionStorage.removeItem(checkoutKeyOf(paying.hold_id));
    hold = null;
    // The page is done shopping: it ends the session so the room lets the next buyer in
    // (a session counts against the tickets left until its buyer leaves).
    room.forget();
    if (event.onsale?.waiting_room) api(`/events/${eventId}/queue`, { method: 'DELETE' }).catch(() => {});
    showOrder(order);
  } catch (error) {
    // A declined card may try again with another one: a new attempt, a new key.
    if (error.code === 'payment_declined' || error.code === 'payment_failed') {
      checkoutKey = crypto.randomUUID();
      sessionStorage.setItem(checkoutKeyOf(paying.hold_id), checkoutKey);
    }
    if (error.code === 'hold_expired' || error.code === 'hold_not_found') return holdGone(error.message);
    fail(error);
    // Payments degraded or orders piling up: nothing was asked or charged and the hold is
    // kept (with more time, once). The page tries again when told, with the same key.
    if (error.code === 'payment_unavailable' || error.code === 'orders_busy') {
      const seconds = Math.min(Math.max(Number(error.details.retry_after_seconds) || 2, 1), 10);
      setTimeout(() => { if (hold?.hold_id === paying.hold_id && !busy) pay(); }, seconds * 1000);
    }
  } finally {
    busy = null;
    button.disabled = false;
    button.textContent = 'Pay';
  }
}

async function release() {
  clear();
  const released = hold;
  busy = released.hold_id;
  try {
    await api(`/holds/${released.hold_id}`, { method: 'DELETE' });
  } catch (error) {
    if (error.code !== 'hold_not_found') return fail(error);
  } finally {
    busy = null;
  }
  if (hold !== released) return; // (ended meanwhile)
  sessionStorage.removeItem(checkoutKeyOf(released.hold_id));
  for (const seat of released.seats ?? []) map.setState(seat.seat_id, 'available');
  clearInterval(holdTimer);
  hold = null;
  $('hold').hidden = true;
  openShop();
  refreshChosen();
  tell('The seats are released.');
}

function showOrder(order) {
  $('hold').hidden = true;
  $('shop').hidden = true;
  $('done').hidden = false;
  $('order-text').textContent = `Order ${order.order_id.slice(0, 8)} · ${money(order.total_cents, order.currency)} paid · ${order.tickets.length} ticket${order.tickets.length === 1 ? '' : 's'}`;
  $('tickets').replaceChildren(...order.tickets.map((t) => ticketCard(t, event.title)));
  $('done').scrollIntoView({ behavior: 'smooth' });
}
