// The buyer's orders and tickets: waitlist offers first, then each order with its tickets,
// and "cancel my order" where the organizer's refund policy still allows it.
import { api, clock, el, header, money, say, session, when } from '/app.js';
import { ticketCard } from '/tickets.js';

header('My orders and tickets');
const message = document.getElementById('message');
const policies = new Map(); // event id -> refund policy

if (!session()) {
  location.href = `/account.html?next=${encodeURIComponent('/orders.html')}`;
} else {
  show().catch((error) => say(message, error.message, 'error'));
}

async function show() {
  const [{ orders }, { offers }] = await Promise.all([api('/me/orders'), api('/me/offers')]);
  showOffers(offers);
  for (const id of new Set(orders.map((o) => o.event_id))) {
    policies.set(id, await api(`/events/${id}/refund-policy`).catch(() => null));
  }
  say(message, orders.length ? '' : 'No orders yet: find an event and get tickets.');
  document.getElementById('orders').replaceChildren(...orders.map(orderCard));
}

function showOffers(offers) {
  const box = document.getElementById('offers');
  box.hidden = offers.length === 0;
  const tick = () => box.replaceChildren(el('h2', {}, 'Tickets held for you'), ...offers.map((o) => {
    const left = (new Date(o.expires_at) - Date.now()) / 1000;
    return el('p', { class: 'offer' },
      `${o.quantity} ticket${o.quantity > 1 ? 's' : ''} from the waitlist: ${left > 0 ? `${clock(left)} left to buy them` : 'the time is up'}. `,
      left > 0 ? el('a', { href: `/event.html?id=${o.event_id}` }, 'Buy them on the event page') : null);
  }));
  tick();
  if (offers.length) setInterval(tick, 1000);
}

function orderCard(order) {
  const live = order.tickets.filter((t) => t.status === 'VALID');
  const policy = policies.get(order.event_id);
  const mayCancel = ['CONFIRMED', 'PARTIALLY_REFUNDED'].includes(order.status) && live.length > 0
    && policy?.buyers_may_cancel_until && new Date(policy.buyers_may_cancel_until) > new Date();
  const status = el('p', { class: 'notice', role: 'status', hidden: true });
  const refunded = order.refunded_cents ? ` · ${money(order.refunded_cents, order.currency)} refunded` : '';
  return el('section', { class: 'order', 'data-order': order.order_id },
    el('h2', {}, el('a', { href: `/event.html?id=${order.event_id}` }, order.event_title)),
    el('p', { class: 'meta' }, `Order ${order.order_id.slice(0, 8)} · ${order.status.toLowerCase().replace('_', ' ')} · ${money(order.total_cents, order.currency)}${refunded} · ${when(order.confirmed_at ?? order.created_at)}`),
    mayCancel
      ? el('p', {}, el('button', { type: 'button', class: 'secondary', onclick: () => cancel(order, policy, status) }, 'Cancel my order'),
        el('span', { class: 'meta' }, ` (until ${when(policy.buyers_may_cancel_until)}${policy.fee_cents || policy.fee_percent ? `; a fee of ${money(policy.fee_cents, order.currency)}${policy.fee_percent ? ` and ${policy.fee_percent} %` : ''} is kept` : ''})`))
      : null,
    ['CONFIRMED', 'PARTIALLY_REFUNDED'].includes(order.status)
      ? el('p', {}, el('button', { type: 'button', class: 'link', onclick: () => resend(order, status) }, 'E-mail me these tickets again'))
      : null,
    status,
    el('ul', { class: 'tickets' }, order.tickets.filter((t) => t.status === 'VALID' || t.status === 'USED').map((t) => ticketCard(t, order.event_title))),
  );
}

async function resend(order, status) {
  try {
    await api(`/orders/${order.order_id}/resend`, { method: 'POST', body: {} });
    say(status, 'On its way: check your inbox in a minute.', 'info');
  } catch (error) {
    say(status, error.message, 'error');
  }
}

async function cancel(order, policy, status) {
  if (!window.confirm('Cancel this order? Your tickets stop working and the money goes back to your card.')) return;
  try {
    const done = await api(`/orders/${order.order_id}/refund`, { method: 'POST', body: { reason: 'Cancelled by the buyer' } });
    const back = done.refund ? money(done.refund.amount_cents, done.currency) : money(0, done.currency);
    await show();
    say(message, `Cancelled: ${back} is on its way back to your card.`, 'info');
  } catch (error) {
    say(status, error.message, 'error');
  }
}
