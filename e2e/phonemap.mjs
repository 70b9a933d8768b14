// The event page's seat map on a phone: headless Chromium at 390 × 844 (3× pixels, touch),
// once at full speed and once with the CPU slowed 4× (a mid-range phone), on an event of
// 10,000 seats whose seats change all the time (tests/api/phone_map.rs holds and releases
// seats while this runs). Measures the first render of the map and the longest main-thread
// task while deltas arrive; uses the map by touch (tap a section, tap a seat, pinch), by
// keys, the price chips and the wheelchair filter; screenshots in SHOTS.
//
//   BASE_URL=… EVENT_ID=<uuid> SHOTS=… node e2e/phonemap.mjs
//
// Prints one JSON line of results; exits non-zero on the first failure.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL ?? 'http://127.0.0.1:8080';
const SHOTS = process.env.SHOTS ?? 'target/web-screenshots';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const EVENT = process.env.EVENT_ID;
const WATCH_MS = Number(process.env.WATCH_MS ?? 4000);
mkdirSync(SHOTS, { recursive: true });

let step = 'starting';
const results = { shots: [] };
const check = (condition, what) => { if (!condition) throw new Error(`${step}: ${what}`); };

// Before any page script: long tasks (over 50 ms, as the browser reports them), the longest
// gap between animation frames (how long the page could not paint), live-map frames.
function instrument() {
  window.__probe = { longtasks: [], maxGap: 0, frames: 0, since: performance.now() };
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__probe.longtasks.push({ at: entry.startTime, ms: entry.duration });
    }).observe({ type: 'longtask', buffered: true });
  } catch { /* no long-task API */ }
  let last = performance.now();
  const tick = (now) => {
    if (now - window.__probe.since > 0) window.__probe.maxGap = Math.max(window.__probe.maxGap, now - last);
    last = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  const Socket = window.WebSocket;
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => { window.__probe.frames += 1; });
    }
  };
}

async function shoot(page, name) {
  const path = join(SHOTS, `phone-map-${name}.png`);
  await page.screenshot({ path });
  results.shots.push(path);
}

/** Watches the page for `ms` while deltas arrive: long tasks, the longest frame gap, frames. */
async function watch(page, ms) {
  await page.evaluate(() => {
    Object.assign(window.__probe, { longtasks: [], maxGap: 0, frames: 0, since: performance.now() });
    document.getElementById('map').dataset.slowestDrawMs = '0';
  });
  await page.waitForTimeout(ms);
  return page.evaluate(() => {
    const p = window.__probe;
    const tasks = p.longtasks.filter((t) => t.at >= p.since);
    const map = document.getElementById('map');
    const slowestDraw = Number(map.dataset.slowestDrawMs);
    return { frames: p.frames, slowest_draw_ms: slowestDraw, longtasks: tasks.length, longest_task_ms: Math.round(Math.max(0, ...tasks.map((t) => t.ms))), longest_frame_gap_ms: Math.round(p.maxGap) };
  });
}

async function run(browser, throttle) {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true, locale: 'fr-FR' });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.addInitScript(instrument);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: throttle });
  const at = `cpu ${throttle}x`;

  step = `${at}: first render`;
  await page.goto(`${BASE}/event.html?id=${EVENT}`);
  await page.waitForSelector('#map[data-view=sections]');
  const render = await page.evaluate(() => ({
    first_render_ms: Math.round(performance.getEntriesByName('seatmap-drawn')[0]?.startTime ?? -1),
    draw_ms: Number(document.getElementById('map').dataset.drawnMs),
    seats: Number(document.getElementById('map').dataset.seats),
  }));
  check(render.seats === 10000, `the map has the 10,000 seats (${render.seats})`);
  // Watched from the first snapshot on: deltas alone, as a buyer's phone gets them.
  await page.waitForSelector('#map[data-seq]');
  const overview = await watch(page, WATCH_MS);
  check(overview.frames > 0, 'live-map frames arrive while watching');
  if (throttle === 1) await shoot(page, 'overview');

  step = `${at}: a tap on a section zooms into its seats`;
  const canvas = await page.locator('#map canvas').boundingBox();
  const target = await page.evaluate(() => {
    const id = document.querySelector('#map details.seat-list > details').dataset.section;
    return { section: id, point: document.getElementById('map').seatMap.sectionPoint(id) };
  });
  await page.touchscreen.tap(canvas.x + target.point[0], canvas.y + target.point[1]);
  await page.waitForSelector(`#map[data-view=seats][data-section="${target.section}"]:not([data-moving])`);
  const zoomed = await watch(page, WATCH_MS);
  check(zoomed.frames > 0, 'the zoomed map still gets live frames');
  const leftBefore = await page.locator(`#sections tr[data-section="${target.section}"] .left`).textContent();
  if (throttle === 1) await shoot(page, 'section');

  step = `${at}: a tap on a seat chooses it`;
  const seat = await page.evaluate((section) => document.getElementById('map').seatMap.freeSeatPoint(section), target.section);
  check(seat, 'an available seat is on the screen');
  await page.touchscreen.tap(canvas.x + seat.point[0], canvas.y + seat.point[1]);
  await page.waitForFunction((label) => document.getElementById('chosen-text').textContent.includes(label), seat.label);
  if (throttle === 1) await shoot(page, 'chosen');

  step = `${at}: keys zoom out and in`;
  await page.locator('#map canvas').focus();
  await page.keyboard.press('Escape');
  await page.waitForSelector('#map[data-view=sections]:not([data-moving])');
  const fitted = Number(await page.locator('#map').getAttribute('data-scale'));
  await page.keyboard.press('+');
  await page.waitForFunction((s) => Number(document.getElementById('map').dataset.scale) > s * 1.2, fitted);

  step = `${at}: a pinch zooms`;
  await page.keyboard.press('Escape');
  await page.waitForSelector('#map[data-view=sections]:not([data-moving])');
  const cx = canvas.x + canvas.width / 2;
  const cy = canvas.y + canvas.height / 2;
  const touches = (spread) => [{ x: cx - spread, y: cy, id: 1 }, { x: cx + spread, y: cy, id: 2 }];
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: touches(20) });
  for (const spread of [40, 70, 100, 140]) await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: touches(spread) });
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await page.waitForFunction((s) => Number(document.getElementById('map').dataset.scale) > s * 3, fitted);

  step = `${at}: the wheelchair filter`;
  await page.getByRole('button', { name: /Wheelchair spaces/ }).click();
  const part = page.locator('#map details.seat-list > details').first();
  await part.locator(':scope > summary').click();
  await part.locator('button[data-seat]').first().waitFor({ state: 'attached' });
  const visible = await part.locator('button[data-seat]:visible').count();
  check(visible === 8, `only the section's 8 wheelchair spaces are listed (${visible})`);
  if (throttle === 1) await shoot(page, 'wheelchair');

  step = `${at}: the price chips`;
  const chips = page.locator('.map-tools .chip[style]');
  check(await chips.count() >= 2, 'one chip per price level');
  await chips.first().click();
  check(await chips.nth(1).getAttribute('aria-pressed') === 'false', 'a chip keeps one price only');
  const when = await page.locator('#when').textContent();
  check(/\(/.test(when) && /[a-zé]+/i.test(when), `the date is in the buyer's language with the venue's zone (${when})`);
  check(errors.length === 0, `no script errors: ${errors}`);
  await context.close();
  return { throttle, ...render, overview, zoomed, left_while_zoomed: leftBefore };
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  check(EVENT, 'EVENT_ID is set');
  results.runs = [await run(browser, 1), await run(browser, 4)];
  console.log(JSON.stringify(results));
} catch (error) {
  console.error(`FAILED at "${step}": ${error.message}`);
  console.error(JSON.stringify(results));
  process.exitCode = 1;
} finally {
  await browser.close();
}
