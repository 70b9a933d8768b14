// The organizer's refunds panel on the dashboard: the event's refund policy, refunding an
// order, cancelling the event, and the cancellation's progress (every order refunded
// through the payment gateway by a job that survives restarts).
import { api, money, say } from '/app.js';

const $ = (id) => document.getElementById(id);

export async function refundsPanel(eventId, event, fail) {
  const policy = event.refund_policy ?? {};
  $('policy-on').checked = policy.buyer_cancel_until_hours != null;
  $('policy-hours').value = String(policy.buyer_cancel_until_hours ?? 48);
  $('policy-cents').value = String(policy.fee_cents ?? 0);
  $('policy-percent').value = String(policy.fee_percent ?? 0);
  const describe = (p) => (p.buyer_cancel_until_hours == null
    ? 'Buyers cannot cancel; you can refund any order.'
    : `Buyers may cancel until ${new Date(p.buyers_may_cancel_until).toLocaleString()}, less ${money(p.fee_cents, event.currency)} and ${p.fee_percent} %.`);
  $('policy-state').textContent = describe(policy);
  $('policy-form').onsubmit = async (e) => {
    e.preventDefault();
    try {
      const saved = await api(`/events/${eventId}/refund-policy`, {
        method: 'PUT',
        body: {
          buyer_cancel_until_hours: $('policy-on').checked ? Number($('policy-hours').value) : null,
          fee_cents: Number($('policy-cents').value),
          fee_percent: Number($('policy-percent').value),
        },
      });
      $('policy-state').textContent = `Saved. ${describe(saved)}`;
    } catch (error) {
      fail(error);
    }
  };
  $('refund-form').onsubmit = async (e) => {
    e.preventDefault();
    const done = $('refund-done');
    try {
      const order = await api(`/orders/${encodeURIComponent($('refund-order').value.trim())}/refund`, {
        method: 'POST',
        body: { reason: $('refund-reason').value },
      });
      const paid = order.refund ? money(order.refund.amount_cents, order.currency) : 'nothing (it was refunded already)';
      say(done, `Order ${order.order_id.slice(0, 8)} is ${order.status.toLowerCase().replace('_', ' ')}: ${paid} given back.`, 'info');
    } catch (error) {
      say(done, error.message, 'error');
    }
  };
  $('cancel-event').onclick = async () => {
    const reason = window.prompt('Cancel the event and refund every order? Tell the buyers why:', 'The event is cancelled');
    if (reason == null) return;
    try {
      await api(`/events/${eventId}/cancel`, { method: 'POST', body: { reason } });
      watchCancellation(eventId, fail);
    } catch (error) {
      fail(error);
    }
  };
  if (event.status === 'CANCELLED') watchCancellation(eventId, fail);
}

function watchCancellation(eventId, fail) {
  $('cancel-event').hidden = true;
  $('cancellation').hidden = false;
  const show = async () => {
    const p = await api(`/events/${eventId}/cancellation`);
    $('cancel-progress').max = Math.max(p.orders, 1);
    $('cancel-progress').value = p.refunded + p.failed;
    $('cancel-text').textContent = p.done
      ? `Done: ${p.refunded} of ${p.orders} orders refunded${p.failed ? `, ${p.failed} the gateway refused (settle them by hand)` : ''}.`
      : `Refunding: ${p.refunded} of ${p.orders} orders so far${p.failed ? `, ${p.failed} refused` : ''}…`;
    return p.done;
  };
  const tick = async () => {
    try {
      if (!(await show())) setTimeout(tick, 1000);
    } catch (error) {
      fail(error);
    }
  };
  tick();
}
