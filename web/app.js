// Shared by every page: the API client, the signed-in session, the header, formatting,
// and a message for a person for every error code the API answers with.

const SESSION_KEY = 'boxoffice.session';

/** The signed-in user ({token, user_id, role, email}) or null. */
export function session() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null');
    if (!saved?.token) return null;
    // A token past its expiry is as good as none.
    const claims = JSON.parse(atob(saved.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    if (claims.exp && claims.exp * 1000 < Date.now()) {
      localStorage.removeItem(SESSION_KEY);
      return null;
    }
    return saved;
  } catch {
    return null;
  }
}

export function signIn(saved) {
  localStorage.setItem(SESSION_KEY, JSON.stringify(saved));
}

export function signOut() {
  localStorage.removeItem(SESSION_KEY);
}

/** An error answer of the API, with its code and the message to show. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(explain(error.code, error, status));
    this.status = status;
    this.code = error.code ?? `http_${status}`;
    this.details = error;
  }
}

const MESSAGES = {
  validation_failed: (e) => `Please check: ${Object.entries(e.fields ?? {}).map(([k, v]) => `${k.replaceAll('_', ' ')} ${v}`).join('; ') || e.message}`,
  unauthorized: () => 'Please sign in first.',
  sign_in_required: () => 'Sign in to buy: your place in the line is kept.',
  forbidden: () => 'You are not allowed to do that.',
  not_found: (e) => e.message || 'Not found.',
  seat_unavailable: () => 'Sorry, someone else just took one of those seats. The map is up to date: pick again.',
  sold_out: () => 'Sold out: there are not enough seats or tickets left.',
  sale_not_open: (e) => e.message || 'The sale is not open right now.',
  max_per_order_exceeded: (e) => e.message || 'That is more than one order may have.',
  too_many_holds: (e) => e.message || 'You already hold seats: buy or release them first.',
  hold_expired: () => 'Your hold expired and the seats went back on sale. Pick again.',
  hold_not_found: () => 'That hold is gone (it expired or was released).',
  already_purchased: () => 'You already paid for this hold.',
  payment_declined: (e) => `Your card was declined${e.reason ? ` (${e.reason.replaceAll('_', ' ')})` : ''}. Try another card.`,
  payment_failed: () => 'The payment could not be processed. Nothing was charged; please try again.',
  payment_unavailable: (e) => `Card payments are slow right now. Nothing was charged and your seats stay held${e.retry_after_seconds ? `: try again in ${e.retry_after_seconds} s` : ''}.`,
  orders_busy: () => 'We are taking a great many orders right now. Nothing was charged and your seats stay held: try again in a moment.',
  admission_required: () => 'This sale has a waiting room: join the line first.',
  admission_invalid: (e) => e.reason === 'expired'
    ? 'Your shopping time ran out. Join the line again.'
    : 'Your place in the shop is no longer valid (it was used in another tab, or it is for another event). Join the line again.',
  rate_limited: () => 'Too many requests: please wait a moment and try again.',
  not_in_queue: () => 'You are not in the line.',
  proof_of_work_invalid: (e) => e.reason === 'expired'
    ? 'The browser check took too long. Join the line again.'
    : 'The browser check did not pass. Reload the page and join the line again.',
  conflict: (e) => e.message || 'That conflicts with the current state.',
  refund_not_allowed: (e) => e.message || 'This order cannot be cancelled any more.',
  refund_in_progress: () => 'A refund of these tickets is already under way: reload in a moment.',
  refund_failed: () => 'The payment provider refused the refund; nothing was refunded. Please try again later.',
  already_waiting: () => 'You are on this waitlist already.',
  resent_recently: (e) => e.message || 'The tickets were just sent: check your inbox.',
  not_sold_out: (e) => e.message || 'There are tickets on sale: get them now instead.',
};

export function explain(code, error = {}, status = 0) {
  const message = MESSAGES[code];
  if (message) return message(error);
  if (error.message) return error.message;
  if (status >= 500) return 'Something went wrong on our side. Please try again.';
  return `The request failed (${status || 'no answer'}).`;
}

/** Calls the API; resolves with the JSON body (null for 204), throws ApiError. */
export async function api(path, { method = 'GET', body, headers = {}, auth = true } = {}) {
  const saved = auth ? session() : null;
  const init = { method, headers: { ...headers } };
  if (saved) init.headers.Authorization = `Bearer ${saved.token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, { error: { code: 'network', message: 'Cannot reach the server. Check your connection and try again.' } });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

/** `tag` with attributes (on* are listeners) and children (strings or nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, value);
  }
  node.append(...children.flat().filter((c) => c != null && c !== false));
  return node;
}

// Formatters are made once: making one costs far more than using it (the live map formats
// prices and counts many times a second).
const currencies = new Map();
export function money(cents, currency = 'USD') {
  if (cents == null) return '';
  let format = currencies.get(currency);
  if (!format) currencies.set(currency, (format = new Intl.NumberFormat(undefined, { style: 'currency', currency })));
  return format.format(cents / 100);
}

export const when = (time) => new Date(time).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** A time on the venue's clock, in the buyer's language, with the zone named ("20:00 CET"). */
export function whenAt(time, timeZone) {
  try {
    return new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short', timeZone }).format(new Date(time))
      + ` (${new Intl.DateTimeFormat(undefined, { timeZone, timeZoneName: 'short' }).formatToParts(new Date(time)).find((p) => p.type === 'timeZoneName')?.value ?? timeZone})`;
  } catch {
    return when(time);
  }
}

const counting = new Intl.NumberFormat();
/** A count in the buyer's language ("10,000", "10 000"). */
export const count = (n) => counting.format(n);

/** "4:05" for 245 seconds. */
export function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** Shows `message` in a status line (role=status or alert). */
export function say(node, message, kind = '') {
  node.textContent = message ?? '';
  node.className = `notice ${kind}`.trim();
  node.hidden = !message;
}

/** The header every page has: the site, where to go, who is signed in. */
export function header(title) {
  const me = session();
  const nav = el('nav', { 'aria-label': 'Main' },
    el('a', { href: '/' }, 'Events'),
    me?.role === 'buyer' ? el('a', { href: '/orders.html' }, 'My tickets') : null,
    me?.role === 'organizer' ? el('a', { href: '/organizer.html' }, 'Organizer') : null,
    me
      ? el('button', { type: 'button', class: 'link', onclick: () => { signOut(); location.href = '/'; } }, `Sign out ${me.email ?? ''}`.trim())
      : el('a', { href: `/account.html?next=${encodeURIComponent(location.pathname + location.search)}` }, 'Sign in'),
  );
  const top = el('header', { class: 'top' }, el('a', { href: '/', class: 'brand' }, 'boxoffice'), nav);
  document.body.prepend(top);
  if (title) document.title = `${title} — boxoffice`;
}

/** The WebSocket URL of an API path. */
export function socketUrl(path) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/api/v1${path}`;
}

export const params = new URLSearchParams(location.search);

/** `wanted` as a path on this site, or `fallback` when it is missing or leads elsewhere. */
export function sameOriginPath(wanted, fallback) {
  if (!wanted) return fallback;
  try {
    const url = new URL(wanted, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : fallback;
  } catch {
    return fallback;
  }
}
