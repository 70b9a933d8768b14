// Every seat of the map as a list, for screen readers and keyboards (and anyone who prefers
// rows to dots): one disclosure per section, its seats as buttons row by row, made when
// the section is first opened (10,000 buttons up front would slow the page for everyone).
// The live map keeps the buttons that exist current.

const counting = new Intl.NumberFormat();
const STATE_TEXT = { available: 'available', held: 'held by another buyer', sold: 'sold', blocked: 'not for sale' };

/**
 * `areas` are the map's seated sections ({section, entries, free, rows}); `onPick(entry)`
 * is called for a seat's button, `onZoom(area)` for "show on the map".
 */
export function seatList({ areas, priceLabel, onPick, onZoom }) {
  const node = document.createElement('details');
  node.className = 'seat-list';
  const summary = document.createElement('summary');
  summary.textContent = 'All seats as a list';
  node.append(summary);
  const counters = new Map();
  for (const area of areas) {
    const part = document.createElement('details');
    part.dataset.section = area.section.section_id;
    const head = document.createElement('summary');
    const count = document.createElement('span');
    counters.set(area, count);
    const price = area.section.price_cents ?? area.entries[0]?.seat.price_cents;
    head.append(`${area.section.name}${price != null ? ` · ${priceLabel(price)}` : ''} · `, count);
    part.append(head);
    part.addEventListener('toggle', () => {
      if (!part.open || part.dataset.built) return;
      part.dataset.built = 'yes';
      const show = document.createElement('button');
      show.type = 'button';
      show.className = 'link';
      show.textContent = `Show ${area.section.name} on the map`;
      show.addEventListener('click', () => onZoom(area));
      part.append(show, ...rows(area));
    });
    node.append(part);
    countText(area, count);
  }

  function rows(area) {
    const groups = [];
    let group = null;
    let current = null;
    for (const entry of area.entries) {
      const cut = entry.seat.label.lastIndexOf('-');
      const row = cut > 0 ? entry.seat.label.slice(0, cut) : entry.seat.label;
      const number = cut > 0 ? entry.seat.label.slice(cut + 1) : null;
      if (row !== current) {
        current = row;
        group = document.createElement('div');
        group.className = 'seat-row';
        group.setAttribute('role', 'group');
        group.setAttribute('aria-label', `${area.section.name}, row ${row}`);
        const name = document.createElement('span');
        name.className = 'row-name';
        name.setAttribute('aria-hidden', 'true');
        name.textContent = row;
        group.append(name);
        groups.push(group);
      }
      const seat = document.createElement('button');
      seat.type = 'button';
      seat.dataset.seat = entry.seat.id;
      if (entry.seat.accessible) seat.dataset.accessible = 'yes';
      seat.textContent = number ?? entry.seat.label;
      seat.addEventListener('click', () => onPick(entry));
      entry.button = seat;
      update(entry);
      group.append(seat);
    }
    return groups;
  }

  function update(entry) {
    const seat = entry.button;
    if (!seat) return;
    const { state, price_cents: price, accessible, label } = entry.seat;
    seat.dataset.state = state;
    seat.setAttribute('aria-pressed', String(entry.chosen));
    seat.disabled = state !== 'available' && !entry.chosen;
    const parts = [`${entry.section.name} ${label}`];
    if (price != null) parts.push(priceLabel(price));
    if (accessible) parts.push('wheelchair space');
    parts.push(entry.chosen ? 'chosen' : STATE_TEXT[state] ?? state);
    seat.setAttribute('aria-label', parts.join(', '));
  }

  function countText(area, count = counters.get(area)) {
    if (count) count.textContent = area.free ? `${counting.format(area.free)} left` : 'sold out';
  }

  return {
    node,
    update,
    counts: (area) => countText(area),
    onlyAccessible(on) { node.classList.toggle('only-accessible', on); if (on) node.open = true; },
  };
}
