// The door scanner page in Chromium with a fake camera that shows a ticket's QR code
// (a Y4M file the test made): the camera scan lets the ticket in; offline, a typed signed
// code is checked against the bundle and queued; back online, the queue syncs.
import { chromium } from 'playwright-core';

const { BASE_URL: BASE, EVENT_ID, SCANNER_TOKEN, CHROMIUM, VIDEO, OFFLINE_CODE } = process.env;
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${VIDEO}`],
});
const results = {};
try {
  const context = await browser.newContext({ permissions: ['camera'] });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${BASE}/scan.html?event=${EVENT_ID}#token=${SCANNER_TOKEN}`);
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Ready'), null, { timeout: 15000 });
  results.token_kept_out_of_the_address = !page.url().includes('bxs_');
  await page.fill('#gate', 'Camera gate');
  await page.click('#camera');
  await page.waitForSelector('#result[data-result="ADMIT"]', { timeout: 30000 });
  results.camera = await page.textContent('#result');
  // The code stays in front of the camera: past the 3 s a code is remembered, the gate
  // must still say ADMIT (not flip to ALREADY IN for the same person).
  await page.waitForTimeout(3500);
  results.camera_held = await page.getAttribute('#result', 'data-result');
  await context.setOffline(true);
  await page.fill('#code', OFFLINE_CODE);
  await page.click('#manual button[type="submit"]');
  await page.waitForFunction(() => document.getElementById('queued').textContent === '1', null, { timeout: 15000 });
  results.offline = await page.getAttribute('#result', 'data-result');
  results.offline_text = await page.textContent('#result');
  await context.setOffline(false);
  await page.waitForFunction(() => document.getElementById('queued').textContent === '0', null, { timeout: 20000 });
  results.synced = true;
  results.admitted_here = await page.textContent('#admitted');
  results.errors = errors;
} catch (error) {
  results.failure = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
