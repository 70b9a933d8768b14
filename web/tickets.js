// A ticket as the buyer sees it: event, seat, and the QR code the door scans (an SVG the
// server draws from the ticket's code; fetched with the buyer's token and shown inline).
import { session, el } from '/app.js';

export function ticketCard(ticket, eventTitle) {
  const qr = el('div', { class: 'qr', role: 'img', 'aria-label': `QR code of ticket ${ticket.ticket_id}` }, 'Loading the code…');
  const card = el('li', { class: 'ticket', 'data-ticket': ticket.ticket_id },
    el('div', {},
      el('strong', {}, eventTitle ?? ticket.event_title ?? ''),
      el('p', { class: 'seat' }, ticket.label),
      el('p', { class: 'meta' }, `Ticket ${ticket.ticket_id.slice(0, 8)}`),
    ),
    qr,
  );
  loadQr(ticket.ticket_id, qr);
  return card;
}

async function loadQr(ticketId, box) {
  try {
    const response = await fetch(`/api/v1/tickets/${ticketId}/qr.svg`, {
      headers: { Authorization: `Bearer ${session()?.token ?? ''}` },
    });
    if (!response.ok) throw new Error(String(response.status));
    const doc = new DOMParser().parseFromString(await response.text(), 'image/svg+xml');
    const svg = doc.documentElement;
    if (svg.nodeName !== 'svg') throw new Error('not an svg');
    box.replaceChildren(document.importNode(svg, true));
  } catch {
    box.textContent = 'The QR code could not be loaded; it is in "My tickets".';
  }
}
