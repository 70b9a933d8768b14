// How long a browser takes to solve the door's proof of work: headless Chromium runs the
// page's own worker (web/pow-worker.js) on challenges from a running server, one after the
// other, and prints the times. Not part of the test suite (it measures, it asserts nothing).
//
//   BASE_URL=http://127.0.0.1:8080 RUNS=20 node e2e/pow-bench.mjs
//
// The server's BOXOFFICE_POW_MAX_NUMBER sets the difficulty.

import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL ?? 'http://127.0.0.1:8080';
const RUNS = Number(process.env.RUNS ?? 20);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  await page.goto(`${BASE}/`);
  const runs = await page.evaluate(async (runs) => {
    const solve = (challenge) => new Promise((resolve) => {
      const worker = new Worker('/pow-worker.js');
      worker.onmessage = ({ data }) => {
        if (data.progress !== undefined) return;
        worker.terminate();
        resolve(data);
      };
      worker.postMessage(challenge);
    });
    const out = [];
    for (let i = 0; i < runs; i++) {
      const challenge = await (await fetch('/api/v1/visitors/challenge')).json();
      const started = performance.now();
      const answer = await solve(challenge);
      const ms = performance.now() - started;
      // The server must take the solution (a visitor token for it).
      const { algorithm, challenge: hash, salt, signature } = challenge;
      const proof = btoa(JSON.stringify({ algorithm, challenge: hash, number: answer.number, salt, signature }));
      const minted = await fetch('/api/v1/visitors', { method: 'POST', headers: { 'X-Proof-Of-Work': proof } });
      out.push({ ms, number: answer.number, maxnumber: challenge.maxnumber, accepted: minted.status === 201 });
    }
    return out;
  }, RUNS);
  const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
  const at = (q) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
  const hashes = runs.reduce((sum, r) => sum + r.number + 1, 0);
  const seconds = runs.reduce((sum, r) => sum + r.ms, 0) / 1000;
  console.log(JSON.stringify({
    runs: RUNS,
    accepted: runs.filter((r) => r.accepted).length,
    maxnumber: runs[0]?.maxnumber,
    median_ms: Math.round(at(0.5)),
    p90_ms: Math.round(at(0.9)),
    max_ms: Math.round(ms[ms.length - 1]),
    hashes_per_second: Math.round(hashes / seconds),
  }));
} finally {
  await browser.close();
}
