// The event page's waitlist: join the waitlist of a sold-out tier or seated section, see
// your place, leave it; and the offers made to you (tickets that came back, held for you
// alone for a while), which you buy like any hold.
import { api, clock, el, say } from '/app.js';

const $ = (id) => document.getElementById(id);

/**
 * Shows what can be waited for (tiers and seated sections with nothing left) and the
 * buyer's places. `take(hold)` opens an offered hold for payment.
 */
export function waitlist({ eventId, event, sections, signedIn, take, fail }) {
  const joined = new Map(); // target key -> {entry, name}
  const key = (t) => (t.tier_id ? `tier:${t.tier_id}` : `section:${t.section_id}`);
  const soldOut = () => [
    ...event.tiers.filter((t) => t.available === 0).map((t) => ({ tier_id: t.tier_id, name: t.name })),
    ...sections.filter((s) => s.kind === 'seated' && s.price_cents != null && s.available === 0)
      .map((s) => ({ section_id: s.section_id, name: `Section ${s.name}` })),
  ];
  const show = () => {
    const targets = soldOut();
    $('waitlist').hidden = targets.length === 0 && joined.size === 0;
    const select = $('wait-for');
    const current = select.value;
    select.replaceChildren(...targets.filter((t) => !joined.has(key(t)))
      .map((t) => el('option', { value: key(t) }, t.name)));
    if (current) select.value = current;
    $('wait-form').hidden = !signedIn || select.options.length === 0;
    $('wait-sign-in').hidden = signedIn;
    $('places').replaceChildren(...[...joined.entries()].map(([k, { entry, name }]) => el('li', {},
      `${name}: you are number ${entry.position} in line${entry.status === 'OFFERED' ? ' — tickets are held for you, see above' : ''} `,
      el('button', { type: 'button', class: 'link', onclick: () => leave(k) }, 'Leave'),
    )));
  };
  const query = (k) => {
    const [kind, id] = k.split(':');
    return `${kind === 'tier' ? 'tier_id' : 'section_id'}=${encodeURIComponent(id)}`;
  };
  const leave = async (k) => {
    try {
      await api(`/events/${eventId}/waitlist?${query(k)}`, { method: 'DELETE' });
      joined.delete(k);
      show();
    } catch (error) {
      fail(error);
    }
  };
  $('wait-form').onsubmit = async (e) => {
    e.preventDefault();
    const k = $('wait-for').value;
    if (!k) return;
    const [kind, id] = k.split(':');
    const body = { [kind === 'tier' ? 'tier_id' : 'section_id']: id, quantity: Number($('wait-qty').value) };
    try {
      const entry = await api(`/events/${eventId}/waitlist`, { method: 'POST', body });
      joined.set(k, { entry, name: $('wait-for').selectedOptions[0]?.textContent ?? '' });
      say($('wait-state'), `You are on the waitlist: number ${entry.position}. If tickets come back, they are held for you and you will see them here.`, 'info');
      show();
    } catch (error) {
      say($('wait-state'), error.message, 'error');
    }
  };

  let offerTimer = null;
  const offers = async () => {
    if (!signedIn) return;
    const mine = (await api('/me/offers')).offers.filter((o) => o.event_id === eventId);
    clearInterval(offerTimer);
    const box = $('offers');
    box.hidden = mine.length === 0;
    if (!mine.length) return;
    const tick = () => box.replaceChildren(el('h2', {}, 'Tickets came back for you'), ...mine.map((o) => {
      const left = (new Date(o.expires_at) - Date.now()) / 1000;
      return el('p', { class: 'offer' },
        `${o.quantity} ticket${o.quantity > 1 ? 's' : ''} held for you alone: ${left > 0 ? `${clock(left)} left` : 'the time is up'}. `,
        left > 0 ? el('button', { type: 'button', onclick: () => open(o) }, 'Buy them') : null);
    }));
    tick();
    offerTimer = setInterval(tick, 1000);
  };
  const open = async (offer) => {
    try {
      take(await api(`/holds/${offer.hold_id}`));
    } catch (error) {
      fail(error);
    }
  };
  offers().catch(fail);
  return {
    /** Counts changed: what can be waited for may have too. */
    refresh: show,
    /** A hold frame for the buyer: an offer is shown at once. */
    news(frame) {
      if (frame.status === 'OFFERED' || frame.status === 'EXPIRED' || frame.status === 'CONFIRMED') offers().catch(fail);
    },
  };
}
