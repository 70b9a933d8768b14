// The event page's waiting room: joining (as the signed-in buyer, or as a visitor who signs
// in to buy and claims the place), the place pushed over its socket, the door's proof of
// work, and the admission once let in (shared by the buyer's tabs).
import { api, ApiError, clock, say, socketUrl, when } from '/app.js';

const $ = (id) => document.getElementById(id);

/**
 * The room of `event` for `me` (the session, or none). `onAdmitted` opens the shop.
 */
export function waitingRoom({ eventId, event, me, fail, onAdmitted }) {
  const message = $('message');
  const tell = (text) => say(message, text, 'info');
  const clear = () => say(message, '');
  let admission = null; // {token, expires_at} once let in

  // Someone not signed in waits in the line as a visitor (a token of their own, kept for this
  // event); signing in to buy claims the place, so it is never lost.
  const visitorKey = () => `boxoffice.visitor.${eventId}`;
  const savedVisitor = () => {
    const saved = JSON.parse(localStorage.getItem(visitorKey()) ?? 'null');
    return saved && new Date(saved.expires_at) > new Date() ? saved : null;
  };
  const queueToken = () => (me?.role === 'buyer' ? me.token : savedVisitor()?.token);
  // A call to the line as whoever queues.
  const lineApi = (path, init = {}) => (me?.role === 'buyer'
    ? api(path, init)
    : api(path, { ...init, auth: false, headers: { ...(init.headers ?? {}), Authorization: `Bearer ${savedVisitor()?.token}` } }));

  async function visitor() {
    const saved = savedVisitor();
    if (saved) return saved;
    let made;
    try {
      made = await api('/visitors', { method: 'POST', auth: false });
    } catch (error) {
      if (error.code !== 'proof_of_work_required' || !error.details.challenge) throw error;
      const proof = await solveChallenge(error.details.challenge);
      made = await api('/visitors', { method: 'POST', auth: false, headers: { 'X-Proof-Of-Work': proof } });
    }
    localStorage.setItem(visitorKey(), JSON.stringify(made));
    return made;
  }

  // Signed in after waiting as a visitor: the visitor's place (or admission) becomes the
  // buyer's.
  async function claimVisitorPlace() {
    const saved = savedVisitor();
    if (!saved || me?.role !== 'buyer') return;
    try {
      const place = await api(`/events/${eventId}/queue/claim`, { method: 'POST', body: { visitor_token: saved.token } });
      localStorage.removeItem(visitorKey());
      localStorage.removeItem(`boxoffice.admission.${eventId}.anonymous`);
      if (place.state === 'admitted') {
        keep({ token: place.admission_token, expires_at: place.expires_at });
      }
    } catch (error) {
      if (error.code === 'not_in_queue' || error.code === 'claim_too_late') localStorage.removeItem(visitorKey());
      else fail(error);
    }
  }

  // The admission is the buyer's, not the tab's: every tab of theirs shares it.
  const admissionKey = () => `boxoffice.admission.${eventId}.${me?.user_id ?? 'anonymous'}`;
  const admissionLive = () => admission && new Date(admission.expires_at) > new Date();
  const keep = (given) => {
    admission = given;
    localStorage.setItem(admissionKey(), JSON.stringify(admission));
  };

  function showRoom() {
    $('room').hidden = false;
    $('shop').hidden = true;
    const join = $('join');
    if (me && me.role !== 'buyer') {
      join.textContent = 'Sign in as a buyer to join the line';
      join.onclick = () => { location.href = `/account.html?next=${encodeURIComponent(location.pathname + location.search)}`; };
      return;
    }
    join.onclick = async () => {
      clear();
      join.disabled = true;
      try {
        if (!me) await visitor();
        showPlace(await joinLine());
        watchPlace();
      } catch (error) {
        join.disabled = false;
        fail(error);
      }
    };
    $('leave').onclick = async () => {
      try {
        await lineApi(`/events/${eventId}/queue`, { method: 'DELETE' });
      } catch (error) {
        if (error.code !== 'not_in_queue') return fail(error);
      }
      placeSocket?.close(1000);
      placeSocket = null;
      $('place').hidden = true;
      join.hidden = false;
      join.disabled = false;
      tell('You left the line.');
    };
    // Someone who joined before (another visit of this page) keeps their place.
    if (queueToken()) lineApi(`/events/${eventId}/queue`).then((place) => { showPlace(place); watchPlace(); }).catch(() => {});
  }

  // Joins the line; when the room's door asks for a proof of work (a bot swarm costs the
  // swarm, not the people), solves the challenge it sent in a worker, showing how far it
  // got, and joins again with the solution.
  async function joinLine() {
    try {
      return await lineApi(`/events/${eventId}/queue`, { method: 'POST' });
    } catch (error) {
      if (error.code !== 'proof_of_work_required' || !error.details.challenge) throw error;
      const proof = await solveChallenge(error.details.challenge);
      return lineApi(`/events/${eventId}/queue`, { method: 'POST', headers: { 'X-Proof-Of-Work': proof } });
    }
  }

  function solveChallenge(challenge) {
    const door = $('door');
    const bar = $('door-progress');
    door.hidden = false;
    bar.value = 0;
    return new Promise((resolve, reject) => {
      const worker = new Worker('/pow-worker.js');
      worker.onmessage = ({ data }) => {
        if (data.progress !== undefined) {
          bar.value = data.progress;
          return;
        }
        worker.terminate();
        door.hidden = true;
        if (data.failed) return reject(new Error('This browser could not finish the check. Reload the page and try again.'));
        door.dataset.took = data.took;
        const { algorithm, challenge: hash, salt, signature } = challenge;
        resolve(btoa(JSON.stringify({ algorithm, challenge: hash, number: data.number, salt, signature, took: data.took })));
      };
      worker.onerror = () => {
        worker.terminate();
        door.hidden = true;
        reject(new Error('This browser could not run the check (are scripts blocked?).'));
      };
      worker.postMessage(challenge);
    });
  }

  let placeSocket = null;
  function watchPlace() {
    if (placeSocket) return;
    const socket = new WebSocket(socketUrl(`/events/${eventId}/queue/live?token=${encodeURIComponent(queueToken())}`));
    placeSocket = socket;
    socket.onmessage = (e) => {
      const news = JSON.parse(e.data);
      if (news.type === 'queue') showPlace(news);
      else if (news.type === 'error') fail(new ApiError(400, news));
    };
    socket.onclose = () => {
      if (placeSocket !== socket) return;
      placeSocket = null;
      // Keep the place by asking now and then until the socket is back.
      if (!admissionLive()) setTimeout(() => { if (!admissionLive() && !$('place').hidden) watchPlace(); }, 2000);
    };
  }

  function showPlace(place) {
    $('join').hidden = true;
    $('place').hidden = false;
    if (place.state === 'admitted') {
      keep({ token: place.admission_token, expires_at: place.expires_at });
      placeSocket?.close(1000);
      placeSocket = null;
      tell("It's your turn! Choose your seats.");
      $('room').hidden = true;
      onAdmitted();
    } else if (place.state === 'sold_out') {
      $('position-text').textContent = 'Sold out.';
      $('ahead-text').textContent = 'Every seat has been sold. Sorry!';
      $('eta-text').textContent = '';
    } else if (place.state === 'closed') {
      $('position-text').textContent = 'The sale is closed.';
      $('ahead-text').textContent = '';
      $('eta-text').textContent = '';
    } else if (place.phase === 'pre_queue') {
      $('position-text').textContent = "You're in the line.";
      $('ahead-text').textContent = `The sale opens ${when(place.sale_starts_at ?? event.onsale.sale_starts_at)}; places are then drawn at random among everyone here (${place.waiting ?? 'many'} waiting).`;
      $('eta-text').textContent = 'Keep this page open: it moves you to the shop by itself.';
    } else {
      $('position-text').textContent = `Your place in line: ${place.position}`;
      $('ahead-text').textContent = place.ahead === 0 ? "You're next." : `${place.ahead} ${place.ahead === 1 ? 'person is' : 'people are'} ahead of you.`;
      $('eta-text').textContent = place.eta_seconds != null ? `Estimated wait: about ${clock(place.eta_seconds)}.` : 'Admission is paused for the moment.';
    }
  }

  admission = JSON.parse(localStorage.getItem(admissionKey()) ?? 'null');
  return {
    /** The admission, while it lasts (null before, and after it ran out). */
    admission: () => (admissionLive() ? admission : null),
    /** The header a hold or checkout carries. */
    headers: () => (admissionLive() ? { 'X-Admission-Token': admission.token } : {}),
    /** The admission is spent (bought with, refused, or run out). */
    forget() {
      localStorage.removeItem(admissionKey());
      admission = null;
    },
    /** Whether someone not signed in waits here as a visitor. */
    visiting: () => savedVisitor() != null,
    /** After signing in: the visitor's place or admission becomes the buyer's. */
    claim: claimVisitorPlace,
    show: showRoom,
  };
}
