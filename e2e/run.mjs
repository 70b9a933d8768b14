// Browser tests of the web pages: headless Chromium driven by Playwright against a running
// boxoffice server. `tests/api/browser.rs` starts the server with the events these use and
// runs this script; it can also run by hand:
//
//   BASE_URL=http://127.0.0.1:8080 ROOM_EVENT=<title> ROOM_EVENT_ID=<uuid> ROOM_ONSALE=<json> \
//     ORGANIZER_TOKEN=<token> OPEN_EVENT=<uuid> SHOTS=shots node e2e/run.mjs
//
// ROOM_EVENT (ROOM_EVENT_ID) is a published event whose waiting room is open and whose sale
// starts later, ROOM_ONSALE its on-sale as PUT, ORGANIZER_TOKEN its organizer's: once the
// buyer is in the line, the script brings the sale forward to a few seconds from then.
// OPEN_EVENT is the id of an event on sale without a waiting room.
// Prints one JSON line of results at the end; exits non-zero on the first failure.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL ?? 'http://127.0.0.1:8080';
const SHOTS = process.env.SHOTS ?? 'target/web-screenshots';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
mkdirSync(SHOTS, { recursive: true });

const stamp = Date.now().toString(36);
let step = 'starting';
const results = {};

function check(condition, what) {
  if (!condition) throw new Error(`${step}: ${what}`);
}

/** A page that fails the run on any script error. */
async function open(context) {
  const page = await context.newPage();
  page.on('pageerror', (error) => { results.page_errors = [...(results.page_errors ?? []), `${step}: ${error.message}`]; });
  return page;
}

/** Screenshots at desktop and phone widths. */
async function shoot(page, name) {
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: join(SHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: join(SHOTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

async function signUp(page, role, name, { here = false } = {}) {
  step = `${role} signs up`;
  if (!here) await page.goto(`${BASE}/account.html`);
  const form = page.locator('#signup');
  await form.getByLabel('Name').fill(name);
  await form.getByLabel('Email').fill(`${role}-${stamp}-${Math.random().toString(36).slice(2, 8)}@example.test`);
  await form.getByLabel(/Password/).fill('correct horse battery');
  await form.getByLabel(role === 'buyer' ? 'buy tickets' : 'sell tickets for my events').check();
  await form.getByRole('button', { name: 'Create the account' }).click();
  await page.waitForURL((url) => !url.pathname.startsWith('/account'));
}

/** The seat buttons of the `nth` seated section in the map's seat list, opened. */
async function seatButtons(page, nth = 0) {
  await page.waitForSelector('#map canvas');
  const list = page.locator('#map details.seat-list');
  if (!(await list.evaluate((d) => d.open))) await list.locator(':scope > summary').click();
  const part = list.locator(':scope > details').nth(nth);
  if (!(await part.evaluate((d) => d.open))) await part.locator(':scope > summary').click();
  await part.locator('button[data-seat]').first().waitFor();
  return part;
}

// The organizer moves the waiting room's sale (an hour away) to a few seconds from now,
// as an organizer may before it starts: the buyer, already in the line, keeps their place
// and is let in when it opens.
async function bringTheSaleForward() {
  const onsale = JSON.parse(process.env.ROOM_ONSALE);
  onsale.sale_starts_at = new Date(Date.now() + 3000).toISOString();
  const answer = await fetch(`${BASE}/api/v1/events/${process.env.ROOM_EVENT_ID}/onsale`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${process.env.ORGANIZER_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(onsale),
  });
  check(answer.ok, `the organizer moves the sale (${answer.status} ${await answer.text()})`);
}

// A buyer: event list -> event page -> waiting room -> admitted -> a seat -> a declined card,
// then a good one -> tickets with QR codes -> "my tickets".
async function buyerJourney(browser) {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await open(context);
  step = 'account page';
  await page.goto(`${BASE}/account.html`);
  await shoot(page, 'account');
  await signUp(page, 'buyer', 'Ada Buyer');

  step = 'event list';
  await page.goto(`${BASE}/`);
  const link = page.getByRole('link', { name: process.env.ROOM_EVENT });
  await link.waitFor();
  // Results as you type: nothing for nonsense, the event for its unfinished name.
  await page.fill('input[name=q]', 'zzqxw');
  await page.getByText('No events match.').waitFor();
  await page.fill('input[name=q]', process.env.ROOM_EVENT.slice(0, -2));
  await link.waitFor();
  await shoot(page, 'events');
  await link.click();

  step = 'event page';
  await page.waitForSelector('#map canvas');
  // (Drawn from the same answer as the map, but wait for it rather than assume the order.)
  await page.locator('#sections tr').nth(1).waitFor();
  await shoot(page, 'event');

  step = 'waiting room';
  await page.getByRole('button', { name: 'Join the line' }).click();
  await page.locator('#place').waitFor({ state: 'visible' });
  const placeText = await page.locator('#position-text').textContent();
  check(/line/i.test(placeText ?? ''), `the buyer sees their place (${placeText})`);
  await shoot(page, 'waiting-room');

  const took = await page.locator('#door').getAttribute('data-took');
  check(took !== null, 'the page solved the door\'s proof of work before joining');
  results.proof_of_work_ms = Number(took);

  step = 'admission';
  await bringTheSaleForward();
  await page.locator('#shop').waitFor({ state: 'visible', timeout: 30_000 });
  check(/shopping time/i.test(await page.locator('#window').textContent()), 'the shopping window counts down');

  step = 'choosing a seat';
  const seat = (await seatButtons(page)).locator('button[data-state=available]').first();
  const seatId = await seat.getAttribute('data-seat');
  await seat.focus();
  await page.keyboard.press('Enter'); // seats are keyboard usable, in the seat list
  await page.waitForSelector(`#map button[data-seat="${seatId}"][aria-pressed=true]`);
  await page.getByRole('button', { name: 'Hold chosen seats' }).click();
  await page.locator('#hold').waitFor({ state: 'visible' });
  check(/left to pay/.test(await page.locator('#countdown').textContent()), 'the hold counts down');
  await shoot(page, 'hold');

  step = 'a declined card';
  await page.getByLabel('Card number').fill('4000 0000 0000 0002');
  await page.getByRole('button', { name: 'Pay' }).click();
  await page.locator('#message.error').waitFor();
  check(/declined/i.test(await page.locator('#message').textContent()), 'the declined card is explained');
  await shoot(page, 'declined');

  step = 'paying';
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Pay' }).click();
  await page.locator('#done').waitFor({ state: 'visible' });
  await page.waitForSelector('#tickets .qr svg');
  const tickets = await page.locator('#tickets .ticket').count();
  check(tickets === 1, `one ticket for one seat (${tickets})`);
  const order = (await page.locator('#order-text').textContent()) ?? '';
  await shoot(page, 'tickets');

  step = 'my tickets';
  await page.getByRole('link', { name: 'My tickets' }).click();
  await page.waitForSelector('.order .qr svg');
  await shoot(page, 'orders');
  results.buyer = { seat_id: seatId, order, tickets };
  await context.close();
}

// Two buyers' browsers on one event: a seat held in one turns held in the other within a
// second, and available again within a second of its release.
async function twoBrowsers(browser) {
  step = 'two browsers';
  const eventUrl = `${BASE}/event.html?id=${process.env.OPEN_EVENT}`;
  const holderContext = await browser.newContext({ viewport: DESKTOP });
  const holder = await open(holderContext);
  await signUp(holder, 'buyer', 'Holder');
  const watcherContext = await browser.newContext({ viewport: PHONE });
  const watcher = await open(watcherContext);
  await Promise.all([holder.goto(eventUrl), watcher.goto(eventUrl)]);
  const [holderSeats] = await Promise.all([seatButtons(holder), seatButtons(watcher)]);
  await watcher.waitForFunction(() => document.getElementById('live-state').textContent.includes('live'));
  const seatId = await holderSeats.locator('button[data-state=available]').nth(3).getAttribute('data-seat');
  await holder.click(`#map button[data-seat="${seatId}"]`);

  step = 'a seat held in one browser';
  const held = holder.waitForResponse((r) => r.url().endsWith('/holds') && r.request().method() === 'POST');
  await holder.getByRole('button', { name: 'Hold chosen seats' }).click();
  check((await held).status() === 201, 'the hold is made');
  const heldAt = Date.now();
  await watcher.waitForSelector(`#map button[data-seat="${seatId}"][data-state=held]`, { timeout: 15_000 });
  const heldSeen = Date.now() - heldAt;
  await shoot(watcher, 'live-held');

  step = 'the seat released';
  const released = holder.waitForResponse((r) => r.url().includes('/holds/') && r.request().method() === 'DELETE');
  await holder.getByRole('button', { name: 'Release the seats' }).click();
  check((await released).status() === 204, 'the hold is released');
  const releasedAt = Date.now();
  await watcher.waitForSelector(`#map button[data-seat="${seatId}"][data-state=available]`, { timeout: 15_000 });
  results.live = { seat_id: seatId, held_seen_ms: heldSeen, released_seen_ms: Date.now() - releasedAt };

  step = 'a seat taken under the nose';
  // The watcher (signed out) cannot hold: the page says why instead of failing silently.
  await watcher.click(`#map button[data-seat="${seatId}"]`);
  await watcher.getByRole('button', { name: 'Hold chosen seats' }).click();
  await watcher.locator('#message', { hasText: /sign in/i }).waitFor();
  check(await watcher.getByRole('link', { name: 'Sign in or create an account' }).isVisible(), 'a signed-out buyer is asked to sign in, with the link');
  await holderContext.close();
  await watcherContext.close();
}

// A buyer holds a seat, reloads the page: the hold and its countdown come back, counting
// to the deadline the server keeps; a second tab shows the same hold; releasing it there
// clears it in the first tab.
async function reloading(browser) {
  step = 'a hold before a reload';
  const eventUrl = `${BASE}/event.html?id=${process.env.OPEN_EVENT}`;
  const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
  const page = await open(context);
  await signUp(page, 'buyer', 'Reloader');
  await page.goto(eventUrl);
  const seats = await seatButtons(page);
  const seatId = await seats.locator('button[data-state=available]').nth(7).getAttribute('data-seat');
  await page.click(`#map button[data-seat="${seatId}"]`);
  await page.getByRole('button', { name: 'Hold chosen seats' }).click();
  await page.locator('#hold').waitFor({ state: 'visible' });
  const left = async (p) => {
    const text = (await p.locator('#countdown').textContent()) ?? '';
    const [, m, sec] = text.match(/(\d+):(\d\d) left to pay/) ?? [];
    check(m !== undefined, `a countdown is shown (${text})`);
    return Number(m) * 60 + Number(sec);
  };
  const mine = () => page.evaluate(async (id) => {
    const token = JSON.parse(localStorage.getItem('boxoffice.session')).token;
    const r = await fetch(`/api/v1/me/holds?event_id=${id}`, { headers: { Authorization: `Bearer ${token}` } });
    return r.json();
  }, process.env.OPEN_EVENT);
  const before = await mine();
  check(before.holds.length === 1, `one live hold (${JSON.stringify(before)})`);

  step = 'the page reloaded';
  await page.waitForTimeout(1500); // (so that a countdown started afresh would show)
  await page.reload();
  await page.locator('#hold').waitFor({ state: 'visible' });
  const expected = (new Date(before.holds[0].expires_at) - Date.now()) / 1000;
  const shown = await left(page);
  check(Math.abs(shown - expected) <= 3, `the countdown goes to the server's deadline: ${shown} s shown, ${expected.toFixed(1)} s left`);
  check((await page.locator('#held-seats li').count()) === 1, 'the held seat is listed again');
  await seatButtons(page);
  await page.waitForSelector(`#map button[data-seat="${seatId}"][data-state=held]`, { timeout: 15_000 });
  await page.screenshot({ path: join(SHOTS, 'hold-after-reload-phone.png'), fullPage: true });

  step = 'a second tab';
  const second = await open(context);
  await second.goto(eventUrl);
  await second.locator('#hold').waitFor({ state: 'visible' });
  check(Math.abs((await left(second)) - (await left(page))) <= 2, 'both tabs count to the same deadline');
  await second.getByRole('button', { name: 'Release the seats' }).click();
  await second.locator('#hold').waitFor({ state: 'hidden' });
  await page.locator('#hold').waitFor({ state: 'hidden', timeout: 15_000 });
  check(/released/i.test(await page.locator('#message').textContent()), 'the first tab says the seats were released elsewhere');
  const after = await mine();
  check(after.holds.length === 0, `no live hold left (${JSON.stringify(after)})`);
  results.reload = { seat_id: seatId, shown_s: shown, expected_s: Math.round(expected) };
  await context.close();
}

// Someone not signed in waits in the line as a visitor; let in, they are asked to sign in
// to buy, sign up from the link, come back to the event with their admission (the place was
// claimed for the new account), and hold a seat.
async function visitorJourney(browser) {
  step = 'a visitor joins the line';
  const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
  const page = await open(context);
  await page.goto(`${BASE}/event.html?id=${process.env.ROOM_EVENT_ID}`);
  await page.getByRole('button', { name: 'Join the line' }).click();
  // (Two proofs of work: the visitor token's and the join's, on a busy machine. The room
  // may let the visitor in before its place is ever shown.)
  await Promise.race([
    page.locator('#place:visible, #shop:visible').first().waitFor({ timeout: 90_000 }),
    page.locator('#message.error').waitFor({ timeout: 90_000 }).then(async () => {
      throw new Error(`the page says: ${await page.locator('#message').textContent()}`);
    }),
  ]);
  step = 'the visitor is let in and asked to sign in';
  await page.locator('#shop').waitFor({ state: 'visible', timeout: 30_000 });
  await page.getByText(/Sign in to buy: your place in the line is kept/).waitFor();
  await page.getByRole('link', { name: 'Sign in or create an account' }).click();
  await page.waitForURL((url) => url.pathname.startsWith('/account'));
  await signUp(page, 'buyer', 'Visiting Buyer', { here: true });
  step = 'back with the claimed admission';
  await page.waitForURL((url) => url.pathname.startsWith('/event'));
  await page.locator('#shop').waitFor({ state: 'visible' });
  check(/shopping time/i.test(await page.locator('#window').textContent()), 'the shopping window (claimed) counts down');
  const seat = (await seatButtons(page)).locator('button[data-state=available]').last();
  const seatId = await seat.getAttribute('data-seat');
  await seat.click();
  await page.getByRole('button', { name: 'Hold chosen seats' }).click();
  await page.locator('#hold').waitFor({ state: 'visible' });
  await page.screenshot({ path: join(SHOTS, 'visitor-claimed-phone.png'), fullPage: true });
  await page.getByRole('button', { name: 'Release the seats' }).click();
  await page.locator('#hold').waitFor({ state: 'hidden' });
  results.visitor = { seat_id: seatId };
  await context.close();
}

// After the sale: the organizer lets buyers cancel until a day before (through the API, as
// the dashboard does); a buyer buys a seat, cancels the order from "my tickets", and the
// seat is for sale again.
async function cancelling(browser) {
  step = 'the refund policy';
  const policy = await fetch(`${BASE}/api/v1/events/${process.env.OPEN_EVENT}/refund-policy`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${process.env.ORGANIZER_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ buyer_cancel_until_hours: 24, fee_cents: 0, fee_percent: 10 }),
  });
  check(policy.ok, `the policy is set (${policy.status})`);
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await open(context);
  await signUp(page, 'buyer', 'Canceller');
  step = 'buying a seat to cancel';
  await page.goto(`${BASE}/event.html?id=${process.env.OPEN_EVENT}`);
  const seats = await seatButtons(page);
  check(/cancel your order until/i.test(await page.locator('#policy').textContent()), 'the event page states the policy');
  const seatId = await seats.locator('button[data-state=available]').nth(5).getAttribute('data-seat');
  await page.click(`#map button[data-seat="${seatId}"]`);
  await page.getByRole('button', { name: 'Hold chosen seats' }).click();
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Pay' }).click();
  await page.locator('#done').waitFor({ state: 'visible' });

  step = 'cancelling the order';
  await page.goto(`${BASE}/orders.html`);
  page.on('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Cancel my order' }).click();
  await page.getByText(/Cancelled: .* on its way back/).waitFor();
  await page.getByText(/ · refunded · /).waitFor();
  await shoot(page, 'cancelled');
  results.cancelled = { seat_id: seatId };
  await context.close();
}

// An organizer: sign-up, a venue from the layout generator (with its seat map), an event,
// prices, an on-sale with a waiting room, publishing, then the live dashboard.
async function organizerJourney(browser) {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await open(context);
  await signUp(page, 'organizer', 'Olga Organizer');
  await page.waitForURL(/organizer\.html/);

  step = 'a venue from the layout generator';
  const venue = page.locator('#new-venue');
  await venue.getByLabel('Name', { exact: true }).fill(`Hall ${stamp}`);
  await venue.getByLabel('City', { exact: true }).fill('Lyon');
  await page.getByRole('button', { name: 'Preview the seat map' }).click();
  await page.waitForSelector('#preview-map canvas');
  const seats = Number(await page.locator('#preview-map').getAttribute('data-seats'));
  check(seats === 96, `the preview draws the 8 x 12 seats (${seats})`);
  await shoot(page, 'organizer-venue-preview');
  await venue.getByRole('button', { name: 'Create the venue' }).click();
  await page.getByText(/Venue ".*" created/).waitFor();

  step = 'an event';
  const title = `Organizer Night ${stamp}`;
  const event = page.locator('#new-event');
  await event.getByLabel('Title').fill(title);
  await event.getByLabel('Performers').fill('The Pages, Playwright');
  await event.getByRole('button', { name: 'Create the event' }).click();
  await page.locator('#setup').waitFor({ state: 'visible' });

  step = 'prices';
  for (const input of await page.locator('#price-rows [name=price]').all()) await input.fill('45.00');
  await page.getByRole('button', { name: 'Save prices' }).click();
  await page.getByText(/Prices saved/).waitFor();

  step = 'the on-sale and its waiting room';
  await page.locator('select[name=proof_of_work]').selectOption('auto');
  await page.getByRole('button', { name: 'Save the on-sale' }).click();
  await page.getByText(/On-sale scheduled/).waitFor();
  await page.getByRole('button', { name: 'Publish the event' }).click();
  await page.getByText(/is published/).waitFor();
  await shoot(page, 'organizer');

  step = 'the back office';
  const eventId = new URL(await page.locator('#dashboard-link').getAttribute('href'), BASE).searchParams.get('id');
  const office = await open(context);
  await office.goto(`${BASE}/backoffice.html?id=${eventId}`);
  await office.waitForSelector('#booking-state[data-status=CONFIRMED]');
  // The invoice is read after the booking: wait for its rent line.
  await office.locator('#invoice tbody tr').first().waitFor();
  await office.locator('#totals dd').first().waitFor();
  const csv = office.waitForEvent('download');
  await office.getByRole('button', { name: 'Download attendees (CSV)' }).click();
  check((await csv).suggestedFilename().startsWith('attendees-'), 'the attendees CSV downloads');
  await office.waitForSelector('#audit tr[data-action="event.published"]');
  // The venue's terms: a day rate, a deposit of a quarter of it, one add-on.
  await office.locator('#terms [name=day_rate]').fill('2000');
  await office.locator('#terms [name=deposit_kind]').selectOption('share');
  await office.locator('#terms [name=deposit_value]').fill('25');
  await office.getByRole('button', { name: 'Add an add-on' }).click();
  await office.locator('#offer-rows [name=name]').fill('Buffet, per guest');
  await office.locator('#offer-rows [name=price]').fill('15');
  await office.getByRole('button', { name: 'Save the terms' }).click();
  await office.getByText(/Terms saved: a new booking owes a deposit of .*500/).waitFor();
  await shoot(office, 'backoffice');
  await office.close();

  step = 'a webhook';
  await page.locator('#hook-url').fill('http://127.0.0.1:9/boxoffice');
  await page.getByRole('button', { name: 'Subscribe' }).click();
  await page.getByText(/signing secret \(shown once\): whsec_/).waitFor();
  await page.locator('#hooks li[data-webhook]').first().waitFor();

  step = 'the live dashboard';
  await page.getByRole('link', { name: 'Dashboard' }).first().click();
  await page.waitForFunction(() => document.getElementById('phase').textContent !== '–');
  await page.getByRole('button', { name: 'Pause admission' }).click();
  await page.getByText('Admission paused.').waitFor();
  check(await page.locator('#door-input').inputValue() === 'auto', 'the dashboard shows the door the on-sale was given');
  step = 'the refund policy on the dashboard';
  await page.locator('#policy-on').check();
  await page.locator('#policy-hours').fill('72');
  await page.getByRole('button', { name: 'Save the policy' }).click();
  await page.getByText(/Saved\. Buyers may cancel until/).waitFor();
  await shoot(page, 'dashboard');
  results.organizer = { title, phase: await page.locator('#phase').textContent() };
  await context.close();
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  await buyerJourney(browser);
  await visitorJourney(browser);
  await twoBrowsers(browser);
  await reloading(browser);
  await cancelling(browser);
  await organizerJourney(browser);
  check(!results.page_errors, `no script errors: ${results.page_errors}`);
  console.log(JSON.stringify(results));
} catch (error) {
  console.error(`FAILED at "${step}": ${error.message}`);
  console.error(JSON.stringify(results));
  process.exitCode = 1;
} finally {
  await browser.close();
}
