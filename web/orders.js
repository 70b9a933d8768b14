// The buyer's orders and tickets.
import { api, el, header, money, say, session, when } from '/app.js';
import { ticketCard } from '/tickets.js';
header('My orders and tickets');
const message = document.getElementById('message');
if (!session()) {
  location.href = `/account.html?next=${encodeURIComponent('/orders.html')}`;
} else {
  try {
    const { orders } = await api('/me/orders');
    say(message, orders.length ? '' : 'No orders yet: find an event and get tickets.');
    document.getElementById('orders').replaceChildren(...orders.map((order) => el('section', { class: 'order' },
      el('h2', {}, el('a', { href: `/event.html?id=${order.event_id}` }, order.event_title)),
      el('p', { class: 'meta' }, `Order ${order.order_id.slice(0, 8)} · ${order.status.toLowerCase()} · ${money(order.total_cents, order.currency)} · ${when(order.confirmed_at ?? order.created_at)}`),
      el('ul', { class: 'tickets' }, order.tickets.map((t) => ticketCard(t, order.event_title))),
    )));
  } catch (error) {
    say(message, error.message, 'error');
  }
}
