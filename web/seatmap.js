// The venue's seat map on a canvas, made for a phone in a crowded on-sale: first an
// overview of the sections coloured by price and dimmed as they sell, a tap on a section
// (or its name in the list) zooms into its seats; pinch, wheel, drag, the +/− buttons and
// the keyboard zoom and pan; changes from the live map are drawn in the next frame, zoomed
// or not. Price chips filter, accessible seats are squares, and every seat is also in a
// list (seatlist.js) for screen readers and keyboards.
//
// One canvas draw of 10,000 seats is a few milliseconds (one path per colour, seats off
// screen skipped), where an SVG of 10,000 circles costs the browser a style and layout
// pass per change.

import { seatList } from '/seatlist.js';

const counting = new Intl.NumberFormat();
const STATE_OF = { a: 'available', h: 'held', s: 'sold', b: 'blocked' };
/** Price levels, dearest first; more prices than colours share the last. */
const PALETTE = ['#6a1b9a', '#1565c0', '#00838f', '#2e7d32', '#9e6a00', '#c2185b'];
const TAKEN = { held: '#c4c4c4', sold: '#8a8a8a', blocked: '#e4e4e4' };
const DIMMED = '#dcdcdc';
const CHOSEN = '#111';
const SEAT_R = 0.42;
/** Below this many pixels of seat radius the map shows sections, not seats. */
const DETAIL_PX = 2.2;
const MAX_SEAT_PX = 26;

/**
 * Draws `sections` ({section_id, name, kind, price_cents, capacity, seats: [{id, label, x,
 * y, price_cents, state, accessible}]}) into `container`. `onPick(seat, entry)` is called
 * when a buyer taps a seat or presses its button in the list; `onStanding(section)` for a
 * standing section. Returns the map's handle (setState, setSection, mark, entry, zoomTo…).
 */
export function drawSeatMap(container, sections, { onPick, onStanding, priceLabel = String, interactive = true } = {}) {
  const started = performance.now();
  const entries = [];
  const byId = new Map();
  const areas = [];
  for (const section of sections) {
    const own = section.kind === 'general_admission' ? [] : section.seats ?? [];
    if (!own.length) continue;
    const area = { section, x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity, entries: [], free: 0, rows: [] };
    let row = null;
    for (const seat of own) {
      const entry = { seat, section, area, chosen: false, button: null };
      area.x0 = Math.min(area.x0, seat.x - SEAT_R);
      area.y0 = Math.min(area.y0, seat.y - SEAT_R);
      area.x1 = Math.max(area.x1, seat.x + SEAT_R);
      area.y1 = Math.max(area.y1, seat.y + SEAT_R);
      const rowLabel = seat.label.slice(0, Math.max(0, seat.label.lastIndexOf('-'))) || seat.label;
      if (rowLabel !== row) { row = rowLabel; area.rows.push({ label: rowLabel, first: entry }); }
      if (seat.state === 'available') area.free += 1;
      entries.push(entry);
      area.entries.push(entry);
      byId.set(seat.id, entry);
    }
    areas.push(area);
  }
  const prices = [...new Set(entries.map((e) => e.seat.price_cents).filter((p) => p != null))].sort((a, b) => b - a);
  const colourOf = (price) => PALETTE[Math.min(PALETTE.length - 1, Math.max(0, prices.indexOf(price)))];

  // The world: seated sections, the stage above them, standing blocks below.
  const seated = areas.length
    ? { x0: Math.min(...areas.map((a) => a.x0)), y0: Math.min(...areas.map((a) => a.y0)), x1: Math.max(...areas.map((a) => a.x1)), y1: Math.max(...areas.map((a) => a.y1)) }
    : { x0: 0, y0: 0, x1: 40, y1: 10 };
  const spanX = seated.x1 - seated.x0;
  // The stage and the standing areas are sized to the venue: a small hall's stage is small.
  const band = Math.min(6, Math.max(1.6, spanX * 0.035));
  const stage = { x0: seated.x0 + spanX * 0.25, x1: seated.x1 - spanX * 0.25, y0: seated.y0 - band * 1.6, y1: seated.y0 - band * 0.6 };
  const standingSections = sections.filter((s) => s.kind === 'general_admission');
  const blockWidth = Math.max(4, spanX / Math.max(1, standingSections.length) - 2);
  const standing = standingSections.map((section, i) => {
    const x0 = seated.x0 + i * (blockWidth + 2);
    return { section, x0, x1: x0 + blockWidth, y0: seated.y1 + band * 0.6, y1: seated.y1 + band * 1.8 };
  });
  const margin = band * 0.4;
  const world = { x0: seated.x0 - margin, y0: stage.y0 - margin, x1: seated.x1 + margin, y1: (standing.length ? standing[0].y1 : seated.y1) + margin };

  // ---- the page's parts ----
  const toolbar = document.createElement('div');
  toolbar.className = 'map-tools';
  const filter = { prices: new Set(prices), accessibleOnly: false };
  const chips = prices.map((price) => {
    const chip = button(`${priceLabel(price)}`, 'chip', () => {
      if (filter.prices.has(price) && filter.prices.size === prices.length) filter.prices = new Set([price]);
      else if (filter.prices.has(price)) filter.prices.delete(price);
      else filter.prices.add(price);
      if (!filter.prices.size) filter.prices = new Set(prices);
      for (const [i, c] of chips.entries()) c.setAttribute('aria-pressed', String(filter.prices.has(prices[i])));
      invalidate();
    });
    chip.style.setProperty('--swatch', colourOf(price));
    chip.setAttribute('aria-pressed', 'true');
    chip.title = `Show seats at ${priceLabel(price)}`;
    return chip;
  });
  const accessible = button('♿ Wheelchair spaces', 'chip', () => {
    filter.accessibleOnly = !filter.accessibleOnly;
    accessible.setAttribute('aria-pressed', String(filter.accessibleOnly));
    list.onlyAccessible(filter.accessibleOnly);
    invalidate();
  });
  accessible.setAttribute('aria-pressed', 'false');
  accessible.hidden = !entries.some((e) => e.seat.accessible);
  const everything = button('All sections', 'secondary', () => overview());
  if (prices.length > 1) toolbar.append(...chips);
  toolbar.append(accessible, everything);

  const frame = document.createElement('div');
  frame.className = 'map-frame';
  const canvas = document.createElement('canvas');
  canvas.tabIndex = 0;
  canvas.setAttribute('role', 'application');
  canvas.setAttribute('aria-roledescription', 'seat map');
  canvas.setAttribute('aria-label', 'Seat map. Arrow keys move it, + and − zoom, Escape shows every section. The list of seats below has every seat as a button.');
  const zoomIn = button('+', 'zoom', () => zoomBy(1.6));
  const zoomOut = button('−', 'zoom', () => zoomBy(1 / 1.6));
  zoomIn.setAttribute('aria-label', 'Zoom in');
  zoomOut.setAttribute('aria-label', 'Zoom out');
  const zoomBox = document.createElement('div');
  zoomBox.className = 'zoom-box';
  zoomBox.append(zoomIn, zoomOut);
  frame.append(canvas, zoomBox);

  const list = seatList({ areas, priceLabel, onPick: (entry) => onPick?.(entry.seat, entry), onZoom: (area) => zoomTo(area.section.section_id) });
  container.replaceChildren(...(interactive ? [toolbar, frame, list.node] : [frame]));
  container.dataset.seats = String(entries.length);

  // ---- the camera ----
  const ctx = canvas.getContext('2d');
  let width = 0;
  let height = 0;
  let dpr = 1;
  const view = { scale: 1, cx: (world.x0 + world.x1) / 2, cy: (world.y0 + world.y1) / 2 };
  let fitScale = 1;
  let focused = null; // the area zoomed into, if any

  function resize() {
    const cssWidth = Math.max(200, frame.clientWidth || container.clientWidth || 320);
    const aspect = (world.y1 - world.y0) / (world.x1 - world.x0);
    const cssHeight = Math.round(Math.min(window.innerHeight * 0.65, Math.max(interactive ? 260 : 160, cssWidth * aspect)));
    if (cssWidth === width && cssHeight === height && dpr === (window.devicePixelRatio || 1)) return;
    const fitted = view.scale <= fitScale * 1.001;
    width = cssWidth;
    height = cssHeight;
    dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.height = `${height}px`;
    fitScale = fit(world).scale;
    if (fitted || !focused) Object.assign(view, fit(world));
    clamp();
    invalidate();
  }

  function fit(box, pad = 0.06) {
    const w = box.x1 - box.x0;
    const h = box.y1 - box.y0;
    const scale = Math.min(width / (w * (1 + 2 * pad)), height / (h * (1 + 2 * pad)));
    return { scale, cx: (box.x0 + box.x1) / 2, cy: (box.y0 + box.y1) / 2 };
  }

  function clamp() {
    view.scale = Math.min(MAX_SEAT_PX / SEAT_R, Math.max(fitScale * 0.8, view.scale));
    view.cx = Math.min(world.x1, Math.max(world.x0, view.cx));
    view.cy = Math.min(world.y1, Math.max(world.y0, view.cy));
  }

  const toScreen = (x, y) => [(x - view.cx) * view.scale + width / 2, (y - view.cy) * view.scale + height / 2];
  const toWorld = (sx, sy) => [(sx - width / 2) / view.scale + view.cx, (sy - height / 2) / view.scale + view.cy];

  let animation = null;
  function moveTo(target) {
    halt();
    if (window.matchMedia?.('(prefers-reduced-motion: reduce)').matches) {
      Object.assign(view, target);
      clamp();
      return invalidate();
    }
    const from = { ...view };
    const began = performance.now();
    container.dataset.moving = 'yes';
    const step = (now) => {
      const t = Math.min(1, (now - began) / 260);
      const ease = 1 - (1 - t) ** 3;
      view.scale = from.scale * (target.scale / from.scale) ** ease;
      view.cx = from.cx + (target.cx - from.cx) * ease;
      view.cy = from.cy + (target.cy - from.cy) * ease;
      clamp();
      draw();
      if (t < 1) animation = requestAnimationFrame(step);
      else { delete container.dataset.moving; reportView(); }
    };
    animation = requestAnimationFrame(step);
  }

  /** Stops a zoom under way where it is (a finger or a key takes over). */
  function halt() {
    cancelAnimationFrame(animation);
    delete container.dataset.moving;
  }

  function zoomBy(factor, sx = width / 2, sy = height / 2) {
    halt();
    const [wx, wy] = toWorld(sx, sy);
    view.scale *= factor;
    clamp();
    // Keep the point under the finger (or the cursor) where it was.
    view.cx = wx - (sx - width / 2) / view.scale;
    view.cy = wy - (sy - height / 2) / view.scale;
    clamp();
    if (view.scale <= fitScale * 1.001) focused = null;
    invalidate();
  }

  function zoomTo(sectionId) {
    const area = areas.find((a) => a.section.section_id === sectionId);
    if (!area) return;
    focused = area;
    const target = fit(area, 0.08);
    // A small section is not blown up past the size a finger needs.
    target.scale = Math.min(target.scale, MAX_SEAT_PX / SEAT_R);
    target.scale = Math.max(target.scale, (DETAIL_PX * 1.5) / SEAT_R);
    moveTo(target);
  }

  function overview() {
    focused = null;
    moveTo(fit(world));
  }

  function reportView() {
    const detailed = SEAT_R * view.scale >= DETAIL_PX;
    container.dataset.view = detailed ? 'seats' : 'sections';
    container.dataset.scale = view.scale.toFixed(2);
    container.dataset.section = focused?.section.section_id ?? '';
  }

  // ---- drawing ----
  let pending = false;
  const dirty = new Set();
  function invalidate() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  function shown(seat) {
    return (seat.price_cents == null || filter.prices.has(seat.price_cents)) && (!filter.accessibleOnly || seat.accessible);
  }

  // The slowest draw so far, on the element for the browser tests (which may reset it).
  function draw() {
    if (!width) return;
    const began = performance.now();
    for (const area of dirty) list.counts(area);
    dirty.clear();
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const r = SEAT_R * view.scale;
    box(stage, '#37474f', 0.6);
    label('STAGE', stage, '#fff', 0.55);
    if (r < DETAIL_PX) drawSections(); else drawSeats(r);
    for (const block of standing) {
      box(block, '#a5d6a7', 0.6);
      label(`${block.section.name} (standing)`, block, '#1b1b1f', 0.35);
    }
    reportView();
    const slowest = Math.max(Number(container.dataset.slowestDrawMs ?? 0), performance.now() - began);
    container.dataset.slowestDrawMs = slowest.toFixed(1);
  }

  function drawSections() {
    for (const area of areas) {
      const price = area.section.price_cents ?? area.entries[0].seat.price_cents;
      const showing = area.entries.some((e) => shown(e.seat));
      const ratio = area.free / area.entries.length;
      let colour = DIMMED;
      if (area.free && showing) colour = colourOf(price);
      ctx.globalAlpha = area.free && showing ? 0.45 + 0.55 * Math.min(1, ratio * 2) : 1;
      box(area, colour, 0.8);
      ctx.globalAlpha = 1;
      const light = colour !== DIMMED;
      const [x0, y0] = toScreen(area.x0, area.y0);
      const [x1, y1] = toScreen(area.x1, area.y1);
      const size = Math.min(18, (y1 - y0) / 3.2, (x1 - x0) / 5);
      if (size < 7) continue;
      ctx.fillStyle = light ? '#fff' : '#333';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      const room = (x1 - x0) * 0.92;
      fitText(area.section.name, (x0 + x1) / 2, (y0 + y1) / 2 - size * 0.6, room, size, '600 ');
      const left = area.free ? `${price != null ? priceLabel(price) : ''} · ${counting.format(area.free)} left` : 'Sold out';
      fitText(left, (x0 + x1) / 2, (y0 + y1) / 2 + size * 0.6, room, size * 0.75, '');
    }
  }

  function drawSeats(r) {
    const [vx0, vy0] = toWorld(-r, -r);
    const [vx1, vy1] = toWorld(width + r, height + r);
    const buckets = new Map();
    const chosen = [];
    for (const area of areas) {
      if (area.x1 < vx0 || area.x0 > vx1 || area.y1 < vy0 || area.y0 > vy1) continue;
      for (const entry of area.entries) {
        const { seat } = entry;
        if (seat.x < vx0 || seat.x > vx1 || seat.y < vy0 || seat.y > vy1) continue;
        if (entry.chosen) { chosen.push(entry); continue; }
        let colour = TAKEN[seat.state] ?? TAKEN.blocked;
        if (seat.state === 'available') colour = shown(seat) ? colourOf(seat.price_cents) : DIMMED;
        let bucket = buckets.get(colour);
        if (!bucket) buckets.set(colour, (bucket = []));
        bucket.push(seat);
      }
    }
    const { scale, cx, cy } = view;
    const [halfW, halfH] = [width / 2, height / 2];
    const seatPath = (seats, radius) => {
      ctx.beginPath();
      for (const seat of seats) {
        const sx = (seat.x - cx) * scale + halfW;
        const sy = (seat.y - cy) * scale + halfH;
        if (seat.accessible) ctx.rect(sx - radius, sy - radius, radius * 2, radius * 2);
        else { ctx.moveTo(sx + radius, sy); ctx.arc(sx, sy, radius, 0, Math.PI * 2); }
      }
    };
    for (const [colour, seats] of buckets) {
      ctx.fillStyle = colour;
      seatPath(seats, r);
      ctx.fill();
    }
    if (chosen.length) {
      ctx.fillStyle = CHOSEN;
      seatPath(chosen.map((e) => e.seat), r * 1.1);
      ctx.fill();
      ctx.fillStyle = '#fff';
      seatPath(chosen.map((e) => e.seat), r * 0.35);
      ctx.fill();
    }
    if (r >= 5) {
      ctx.fillStyle = '#444';
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      ctx.font = `${Math.min(14, r * 1.3)}px system-ui, sans-serif`;
      for (const area of areas) {
        for (const row of area.rows) {
          const [sx, sy] = toScreen(row.first.seat.x, row.first.seat.y);
          if (sy > -r && sy < height + r) ctx.fillText(row.label, sx - r * 1.6, sy);
        }
      }
    }
    ctx.textAlign = 'left';
    ctx.textBaseline = 'bottom';
    ctx.fillStyle = '#222';
    ctx.font = `600 ${Math.min(16, Math.max(11, r * 1.5))}px system-ui, sans-serif`;
    for (const area of areas) {
      const [sx, sy] = toScreen(area.x0, area.y0);
      ctx.fillText(area.section.name, sx, sy - 2);
    }
  }

  /** `text` centred at (x, y), made smaller to fit `room` pixels (or left out below 7 px). */
  function fitText(text, x, y, room, size, weight) {
    ctx.font = `${weight}${size}px system-ui, sans-serif`;
    const wide = ctx.measureText(text).width;
    const fitted = wide > room ? (size * room) / wide : size;
    if (fitted < 7) return;
    ctx.font = `${weight}${fitted}px system-ui, sans-serif`;
    ctx.fillText(text, x, y);
  }

  function box(b, colour, radius) {
    const [x0, y0] = toScreen(b.x0, b.y0);
    const [x1, y1] = toScreen(b.x1, b.y1);
    ctx.fillStyle = colour;
    ctx.beginPath();
    ctx.roundRect(x0, y0, x1 - x0, y1 - y0, Math.max(2, radius * view.scale));
    ctx.fill();
  }

  function label(text, b, colour, share) {
    const [x0, y0] = toScreen(b.x0, b.y0);
    const [x1, y1] = toScreen(b.x1, b.y1);
    const size = Math.min(16, (y1 - y0) * share);
    if (size < 7) return;
    ctx.fillStyle = colour;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.font = `600 ${size}px system-ui, sans-serif`;
    ctx.fillText(text, (x0 + x1) / 2, (y0 + y1) / 2);
  }

  // ---- touch, mouse and keys ----
  const pointers = new Map();
  let gesture = null;
  if (interactive) {
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture?.(e.pointerId);
      pointers.set(e.pointerId, { x: e.offsetX, y: e.offsetY });
      gesture = { start: snapshot(), view: { ...view }, moved: false };
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!pointers.has(e.pointerId) || !gesture) return;
      pointers.set(e.pointerId, { x: e.offsetX, y: e.offsetY });
      const now = snapshot();
      const { start } = gesture;
      if (Math.hypot(now.x - start.x, now.y - start.y) > 8 || Math.abs(now.spread - start.spread) > 8) gesture.moved = true;
      if (!gesture.moved) return;
      halt();
      if (start.count === now.count && now.count === 2 && start.spread > 0) {
        view.scale = gesture.view.scale * (now.spread / start.spread);
      }
      view.cx = gesture.view.cx - (now.x - start.x) / view.scale;
      view.cy = gesture.view.cy - (now.y - start.y) / view.scale;
      clamp();
      if (now.count !== start.count) gesture = { start: now, view: { ...view }, moved: true };
      invalidate();
    });
    const end = (e) => {
      const wasTap = gesture && !gesture.moved && pointers.size === 1;
      pointers.delete(e.pointerId);
      if (wasTap && e.type === 'pointerup') tap(e.offsetX, e.offsetY);
      const moved = gesture?.moved;
      gesture = pointers.size ? { start: snapshot(), view: { ...view }, moved: true } : null;
      if (moved && view.scale <= fitScale * 1.001) focused = null;
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
    canvas.addEventListener('wheel', (e) => {
      e.preventDefault();
      zoomBy(Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.002)), e.offsetX, e.offsetY);
    }, { passive: false });
    canvas.addEventListener('keydown', (e) => {
      const pan = 80 / view.scale;
      const keys = {
        ArrowLeft: () => { view.cx -= pan; }, ArrowRight: () => { view.cx += pan; },
        ArrowUp: () => { view.cy -= pan; }, ArrowDown: () => { view.cy += pan; },
        '+': () => zoomBy(1.4), '=': () => zoomBy(1.4), '-': () => zoomBy(1 / 1.4), Escape: overview, 0: overview,
      };
      const act = keys[e.key];
      if (!act) return;
      e.preventDefault();
      if (act !== overview) halt();
      act();
      clamp();
      invalidate();
    });
  }

  function snapshot() {
    const points = [...pointers.values()];
    const x = points.reduce((s, p) => s + p.x, 0) / Math.max(1, points.length);
    const y = points.reduce((s, p) => s + p.y, 0) / Math.max(1, points.length);
    const spread = points.length === 2 ? Math.hypot(points[0].x - points[1].x, points[0].y - points[1].y) : 0;
    return { x, y, spread, count: points.length };
  }

  function tap(sx, sy) {
    const [wx, wy] = toWorld(sx, sy);
    const inside = (b) => wx >= b.x0 && wx <= b.x1 && wy >= b.y0 && wy <= b.y1;
    const block = standing.find(inside);
    if (block) return onStanding?.(block.section);
    const r = SEAT_R * view.scale;
    if (r < DETAIL_PX) {
      const area = areas.find(inside);
      if (area) zoomTo(area.section.section_id);
      return;
    }
    // The nearest seat within a finger's reach (at least 12 px), else the section tapped.
    const reach = Math.max(12, r * 1.5) / view.scale;
    let best = null;
    let bestDistance = reach;
    for (const entry of entries) {
      const d = Math.hypot(entry.seat.x - wx, entry.seat.y - wy);
      if (d < bestDistance) { best = entry; bestDistance = d; }
    }
    if (best) return onPick?.(best.seat, best);
    const area = areas.find(inside);
    if (area && area !== focused) zoomTo(area.section.section_id);
  }

  new ResizeObserver(resize).observe(frame);
  resize();
  draw();
  container.dataset.drawnMs = (performance.now() - started).toFixed(1);
  performance.mark('seatmap-drawn');

  return {
    setState(id, state) {
      const entry = byId.get(id);
      if (!entry || entry.seat.state === state) return;
      if (entry.seat.state === 'available') entry.area.free -= 1;
      if (state === 'available') entry.area.free += 1;
      entry.seat.state = state;
      list.update(entry);
      dirty.add(entry.area);
      invalidate();
    },
    /** Packed states ("ahsb…") of a section, in seat-map order. */
    setSection(section, packed) {
      const seats = section.seats ?? [];
      if (packed.length !== seats.length) return;
      seats.forEach((seat, i) => this.setState(seat.id, STATE_OF[packed[i]] ?? 'blocked'));
    },
    mark(id, chosen) {
      const entry = byId.get(id);
      if (!entry) return;
      entry.chosen = chosen;
      list.update(entry);
      invalidate();
    },
    entry(id) { return byId.get(id); },
    zoomTo,
    overview,
    prices,
    // For the browser tests: where things are on the screen (CSS pixels from the canvas'
    // corner), as a finger would find them.
    sectionPoint(sectionId) {
      const area = areas.find((a) => a.section.section_id === sectionId);
      return area && toScreen((area.x0 + area.x1) / 2, (area.y0 + area.y1) / 2);
    },
    freeSeatPoint(sectionId) {
      const area = areas.find((a) => a.section.section_id === sectionId);
      const entry = area?.entries.find((e) => {
        const [x, y] = toScreen(e.seat.x, e.seat.y);
        return e.seat.state === 'available' && !e.chosen && x > 20 && y > 20 && x < width - 60 && y < height - 20;
      });
      return entry && { label: entry.seat.label, point: toScreen(entry.seat.x, entry.seat.y) };
    },
  };
}

function button(text, className, onclick) {
  const node = document.createElement('button');
  node.type = 'button';
  node.className = className;
  node.textContent = text;
  node.addEventListener('click', onclick);
  return node;
}

export { STATE_OF };
