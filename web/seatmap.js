// The venue's seat map as SVG, drawn from the layout's coordinates: one circle per seat,
// colored by state (and by price level while available), one block per standing section.

const SVG = 'http://www.w3.org/2000/svg';
const STATE_OF = { a: 'available', h: 'held', s: 'sold', b: 'blocked' };
const PRICE_LEVELS = 5;

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/**
 * Draws `sections` (each {name, kind, seats: [{id, label, x, y, price_cents, state}],
 * capacity}) into `container`. Returns {setState(id, state), seat(id)}.
 * `onPick(seat)` is called when a buyer clicks or presses Enter/Space on a seat.
 */
export function drawSeatMap(container, sections, { onPick, priceLabel } = {}) {
  const seated = sections.flatMap((s) => s.seats ?? []);
  const prices = [...new Set(seated.map((s) => s.price_cents).filter((p) => p != null))].sort((a, b) => b - a);
  const level = (price) => Math.min(PRICE_LEVELS - 1, Math.max(0, prices.indexOf(price)));
  const xs = seated.map((s) => s.x);
  const ys = seated.map((s) => s.y);
  const minX = Math.min(0, ...xs);
  const minY = Math.min(0, ...ys);
  const maxX = Math.max(1, ...xs);
  let maxY = Math.max(1, ...ys);
  const standing = sections.filter((s) => s.kind === 'general_admission');
  const gaTop = maxY + 3;
  if (standing.length) maxY = gaTop + 4;
  const pad = 2;
  const map = svg('svg', {
    viewBox: `${minX - pad} ${minY - pad - 2} ${maxX - minX + 2 * pad} ${maxY - minY + 2 * pad + 2}`,
    class: 'seatmap',
    role: 'group',
    'aria-label': 'Seat map',
  });
  const stage = svg('text', { x: (minX + maxX) / 2, y: minY - pad - 0.6, 'text-anchor': 'middle', class: 'stage' });
  stage.textContent = 'STAGE';
  map.append(stage);
  const byId = new Map();
  for (const section of sections) {
    if (section.kind === 'general_admission') continue;
    const seats = section.seats ?? [];
    if (!seats.length) continue;
    const group = svg('g', { 'aria-label': section.name });
    const label = svg('text', {
      x: Math.min(...seats.map((s) => s.x)),
      y: Math.min(...seats.map((s) => s.y)) - 0.8,
      class: 'section-name',
    });
    label.textContent = section.name;
    group.append(label);
    for (const seat of seats) {
      const dot = svg('circle', {
        cx: seat.x, cy: seat.y, r: 0.42,
        'data-seat': seat.id,
        'data-state': seat.state,
        'data-level': seat.price_cents == null ? '' : level(seat.price_cents),
        tabindex: onPick ? 0 : -1,
        role: onPick ? 'button' : 'img',
      });
      const title = svg('title');
      dot.append(title);
      const entry = { seat, dot, title, section };
      byId.set(seat.id, entry);
      describe(entry, priceLabel);
      if (onPick) {
        dot.addEventListener('click', () => onPick(seat, entry));
        dot.addEventListener('keydown', (e) => {
          if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onPick(seat, entry); }
        });
      }
      group.append(dot);
    }
    map.append(group);
  }
  const width = Math.max(4, (maxX - minX) / Math.max(1, standing.length) - 1);
  standing.forEach((section, i) => {
    const x = minX + i * (width + 1);
    const block = svg('rect', { x, y: gaTop, width, height: 3, rx: 0.5, class: 'standing' });
    const text = svg('text', { x: x + width / 2, y: gaTop + 1.9, 'text-anchor': 'middle', class: 'section-name' });
    text.textContent = `${section.name} (standing)`;
    map.append(block, text);
  });
  container.replaceChildren(map);
  return {
    setState(id, state) {
      const entry = byId.get(id);
      if (!entry || entry.seat.state === state) return;
      entry.seat.state = state;
      entry.dot.setAttribute('data-state', state);
      describe(entry, priceLabel);
    },
    /** Packed states ("ahsb…") of a section, in seat-map order. */
    setSection(section, packed) {
      const seats = section.seats ?? [];
      if (packed.length !== seats.length) return;
      seats.forEach((seat, i) => this.setState(seat.id, STATE_OF[packed[i]] ?? 'blocked'));
    },
    mark(id, chosen) {
      byId.get(id)?.dot.classList.toggle('chosen', chosen);
    },
    entry(id) { return byId.get(id); },
  };
}

function describe({ seat, dot, title, section }, priceLabel) {
  const price = seat.price_cents != null && priceLabel ? `, ${priceLabel(seat.price_cents)}` : '';
  const text = `${section.name} ${seat.label}${price}: ${seat.state}`;
  title.textContent = text;
  dot.setAttribute('aria-label', text);
}

export { STATE_OF };
