// The organizer's webhooks (on the organizer page): subscribe a URL to event types (the
// signing secret is shown once), send a test, read each subscription's delivery log and
// redeliver, end a subscription.
import { api, el, say, when } from '/app.js';

const $ = (id) => document.getElementById(id);
const TYPES = ['order.confirmed', 'order.refunded', 'ticket.transferred', 'ticket.checked_in', 'event.sold_out', 'event.cancelled', 'waitlist.offered'];

export function webhooksPanel(fail) {
  $('hook-types').replaceChildren(...TYPES.map((t) => el('label', {},
    el('input', { type: 'checkbox', name: 'type', value: t, checked: t.startsWith('order.') }), ` ${t}`)));
  $('new-hook').onsubmit = async (e) => {
    e.preventDefault();
    const events = [...document.querySelectorAll('#hook-types input:checked')].map((i) => i.value);
    try {
      const made = await api('/webhooks', { method: 'POST', body: { url: $('hook-url').value.trim(), events } });
      say($('hook-secret'), `Subscribed. Its signing secret (shown once): ${made.secret}`, 'info');
      await list();
    } catch (error) {
      say($('hook-secret'), error.message, 'error');
    }
  };
  const log = async (hook, box) => {
    const { deliveries } = await api(`/webhooks/${hook.webhook_id}/deliveries`);
    box.replaceChildren(...(deliveries.length ? deliveries : [null]).map((d) => (d
      ? el('li', {},
        `${when(d.created_at)} · ${d.type} · ${d.status.toLowerCase()} after ${d.attempts} tr${d.attempts === 1 ? 'y' : 'ies'}`,
        d.last_status ? ` · answered ${d.last_status}` : '', d.last_error ? ` · ${d.last_error}` : '', ' ',
        el('button', { type: 'button', class: 'link', onclick: () => api(`/webhooks/${hook.webhook_id}/deliveries/${d.delivery_id}/redeliver`, { method: 'POST', body: {} }).then(() => log(hook, box)).catch(fail) }, 'Redeliver'))
      : el('li', { class: 'meta' }, 'Nothing sent yet.'))));
  };
  const list = async () => {
    const { webhooks } = await api('/webhooks');
    $('hooks').replaceChildren(...webhooks.map((hook) => {
      const box = el('ul', { class: 'meta' });
      return el('li', { 'data-webhook': hook.webhook_id },
        el('strong', {}, hook.url), ` — ${hook.events.join(', ')}`,
        hook.disabled_at ? el('span', { class: 'error' }, ` (off: ${hook.disabled_reason})`) : '', ' ',
        el('button', { type: 'button', onclick: () => api(`/webhooks/${hook.webhook_id}/test`, { method: 'POST', body: {} }).then(() => setTimeout(() => log(hook, box).catch(fail), 1500)).catch(fail) }, 'Send a test'), ' ',
        el('button', { type: 'button', class: 'secondary', onclick: () => log(hook, box).catch(fail) }, 'Delivery log'), ' ',
        el('button', { type: 'button', class: 'secondary', onclick: () => api(`/webhooks/${hook.webhook_id}`, { method: 'DELETE' }).then(list).catch(fail) }, 'Remove'),
        box);
    }));
  };
  list().catch(fail);
}
