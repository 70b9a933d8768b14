// The organizer's live dashboard: seat counts from the live map, the waiting room's figures
// every two seconds, holds per second over the last two minutes, and admission controls.
import { api, header, params, say, session, socketUrl } from '/app.js';
import { refundsPanel } from '/refunds.js';

const $ = (id) => document.getElementById(id);
const eventId = params.get('id');
const message = $('message');
const fail = (error) => say(message, error.message, 'error');
const counts = new Map(); // seat id -> state
const perSecond = new Map(); // unix second -> holds
let stats = null;

header('Dashboard');
if (!session() || session().role !== 'organizer') {
  location.href = `/account.html?next=${encodeURIComponent(location.pathname + location.search)}`;
} else {
  start().catch(fail);
}

async function start() {
  const [event, seatmap] = await Promise.all([api(`/events/${eventId}`), api(`/events/${eventId}/seatmap`)]);
  $('title').textContent = event.title;
  document.title = `Live: ${event.title} — boxoffice`;
  const order = seatmap.sections.map((s) => s.rows.flatMap((r) => r.seats.map((seat) => seat.seat_id)));
  for (const [i, section] of seatmap.sections.entries()) {
    for (const row of section.rows) for (const seat of row.seats) counts.set(seat.seat_id, seat.state);
    section.index = i;
  }
  const tiers = new Map(event.tiers.map((t) => [t.tier_id, t]));
  const show = () => {
    let sold = 0; let held = 0; let available = 0;
    for (const state of counts.values()) {
      if (state === 'sold') sold += 1; else if (state === 'held') held += 1; else if (state === 'available') available += 1;
    }
    // Standing tickets as the live map counts them: left, held by buyers, sold.
    const sum = (field) => [...tiers.values()].reduce((n, t) => n + (t[field] ?? 0), 0);
    const [gaLeft, gaHeld, gaSold] = [sum('available'), sum('held'), sum('sold')];
    $('sold').textContent = String(sold + gaSold);
    $('ga').textContent = tiers.size
      ? `Standing tickets: ${gaSold} sold, ${gaHeld} held, ${gaLeft} left (included in the counts above).`
      : '';
    $('held').textContent = String(held + gaHeld);
    $('available').textContent = String(available + gaLeft);
  };
  show();
  const connect = () => {
    const socket = new WebSocket(socketUrl(`/events/${eventId}/live`));
    socket.onmessage = (e) => {
      const frame = JSON.parse(e.data);
      if (frame.type === 'snapshot') {
        frame.sections.forEach((packed) => {
          const i = seatmap.sections.findIndex((s) => s.section_id === packed.section_id);
          const ids = order[i] ?? [];
          if (packed.states?.length === ids.length) {
            [...packed.states].forEach((c, k) => counts.set(ids[k], { a: 'available', h: 'held', s: 'sold' }[c] ?? 'blocked'));
          }
        });
      } else if (frame.type === 'delta') {
        const second = Math.floor(Date.now() / 1000);
        for (const change of frame.changes) {
          if (change.state === 'held' && counts.get(change.seat_id) !== 'held') perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
          counts.set(change.seat_id, change.state);
        }
      }
      for (const t of frame.tiers ?? []) {
        const tier = tiers.get(t.tier_id);
        if (tier) {
          if (frame.type === 'delta' && t.available < tier.available) {
            const second = Math.floor(Date.now() / 1000);
            perSecond.set(second, (perSecond.get(second) ?? 0) + (tier.available - t.available));
          }
          Object.assign(tier, { available: t.available, held: t.held, sold: t.sold });
        }
      }
      show();
    };
    socket.onclose = () => setTimeout(connect, 1000);
  };
  connect();
  if (event.onsale?.waiting_room) {
    $('controls').hidden = false;
    $('rate-form').onsubmit = (e) => { e.preventDefault(); control({ admission_per_minute: Number($('rate-input').value) }); };
    $('pause').onclick = () => control({ paused: !stats?.paused });
    $('door-form').onsubmit = (e) => { e.preventDefault(); control({ proof_of_work: $('door-input').value }); };
    await pollRoom(true);
    setInterval(() => pollRoom(false).catch(fail), 2000);
  } else {
    for (const id of ['waiting', 'shopping', 'admitted', 'rate', 'phase']) $(id).textContent = 'no waiting room';
  }
  setInterval(chart, 1000);
  chart();
  door().catch(fail);
  refundsPanel(eventId, event, fail).catch(fail);
}

// The door: check-in figures every five seconds, and the event's scanners.
async function door() {
  const showDoor = async () => {
    const figures = await api(`/events/${eventId}/checkins/stats`);
    $('checked-in').textContent = `${figures.admitted} of ${figures.tickets}`;
    $('conflicts').textContent = String(figures.conflicts);
    $('refused').textContent = String(figures.refused);
    const lastMinute = new Map();
    const newest = figures.per_minute.at(-1)?.minute;
    for (const m of figures.per_minute) if (m.minute === newest) lastMinute.set(m.gate, m.admitted);
    $('gates').replaceChildren(...figures.per_gate.map((g) => {
      const li = document.createElement('li');
      li.textContent = `${g.gate}: ${g.admitted} in (${lastMinute.get(g.gate) ?? 0} in the last minute)`;
      return li;
    }));
  };
  const listScanners = async () => {
    const { scanners } = await api(`/events/${eventId}/scanners`);
    $('scanners').replaceChildren(...scanners.map((s) => {
      const li = document.createElement('li');
      li.textContent = `${s.name} at ${s.gate}${s.revoked_at ? ' (revoked)' : ''} `;
      if (!s.revoked_at) {
        const revoke = document.createElement('button');
        revoke.type = 'button';
        revoke.textContent = 'Revoke';
        revoke.onclick = async () => {
          await api(`/events/${eventId}/scanners/${s.scanner_id}`, { method: 'DELETE' }).catch(fail);
          await listScanners().catch(fail);
        };
        li.append(revoke);
      }
      return li;
    }));
  };
  $('scanner-form').onsubmit = async (e) => {
    e.preventDefault();
    try {
      const made = await api(`/events/${eventId}/scanners`, { method: 'POST', body: { name: $('scanner-name').value, gate: $('scanner-gate').value } });
      const link = `${location.origin}/scan.html?event=${eventId}#token=${made.token}`;
      const shown = $('scanner-made');
      shown.hidden = false;
      shown.textContent = `Open this on the scanner (shown once): ${link}`;
      await listScanners();
    } catch (error) {
      fail(error);
    }
  };
  await Promise.all([showDoor(), listScanners()]);
  setInterval(() => showDoor().catch(fail), 5000);
}

async function pollRoom(first) {
  stats = await api(`/events/${eventId}/queue/stats`);
  showRoom(first);
}

function showRoom(first) {
  $('waiting').textContent = String(stats.waiting);
  $('shopping').textContent = String(stats.shopping);
  $('admitted').textContent = String(stats.admitted_total);
  $('rate').textContent = stats.paused ? 'paused' : `${Math.round(stats.measured_per_minute)}/min (set ${stats.admission_per_minute}/min)`;
  $('phase').textContent = stats.phase.replace('_', ' ');
  $('pause').textContent = stats.paused ? 'Resume admission' : 'Pause admission';
  $('door-state').textContent = `${stats.joins_last_minute} joined in the last minute; ${stats.proof_of_work_asked ? 'new arrivals are checked' : 'no check now'}`;
  if (first) {
    $('rate-input').value = stats.admission_per_minute;
    $('door-input').value = stats.proof_of_work;
  }
}

async function control(body) {
  try {
    stats = await api(`/events/${eventId}/queue`, { method: 'PATCH', body });
    showRoom(false);
    const said = body.proof_of_work ? `Browser check: ${$('door-input').selectedOptions[0].textContent}.`
      : body.paused === true ? 'Admission paused.' : body.paused === false ? 'Admission resumed.' : `Admission set to ${body.admission_per_minute} per minute.`;
    say(message, said, 'info');
  } catch (error) {
    fail(error);
  }
}

function chart() {
  const now = Math.floor(Date.now() / 1000);
  const values = Array.from({ length: 120 }, (_, i) => perSecond.get(now - 119 + i) ?? 0);
  for (const second of perSecond.keys()) if (second < now - 130) perSecond.delete(second);
  const top = Math.max(1, ...values);
  const points = values.map((v, i) => `${i},${(40 - (v / top) * 38).toFixed(2)}`).join(' ');
  $('chart').innerHTML = `<polyline fill="none" stroke="currentColor" stroke-width="0.6" points="${points}"/>`;
  const last10 = values.slice(-10).reduce((a, b) => a + b, 0) / 10;
  $('chart-text').textContent = `Peak ${top}/s · last 10 s ${last10.toFixed(1)}/s`;
}
