// Solves a waiting room's proof-of-work challenge (ALTCHA's format) off the page's thread:
// finds the number n in 0..=maxnumber whose SHA-256 of `salt + n` is `challenge`.
//
// SHA-256 is written out here rather than asked of WebCrypto: one `crypto.subtle.digest`
// promise per try manages about 65,000 tries a second in Chromium, while hashing the
// salt's whole blocks once and then only the last block (the salt's tail, the number
// counted up in place, padding) for each try does several times that (README, Figures). A faster page means the server can set a higher
// difficulty for the same wait, which is what a bot with native code pays for.
// Messages out: {progress: 0..1} now and then, then {number, took} or {failed}.

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const INITIAL = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const W = new Uint32Array(64);

/** Runs SHA-256's compression on the 64-byte block of `bytes` at `offset`, updating `h`. */
function compress(h, bytes, offset) {
  for (let i = 0; i < 16; i++) {
    const j = offset + 4 * i;
    W[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
  }
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15];
    const y = W[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  let a = h[0]; let b = h[1]; let c = h[2]; let d = h[3];
  let e = h[4]; let f = h[5]; let g = h[6]; let k = h[7];
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (k + s1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
}

function wordsOf(hex) {
  const words = new Uint32Array(8);
  for (let i = 0; i < 8; i++) words[i] = parseInt(hex.slice(8 * i, 8 * i + 8), 16);
  return words;
}

function solve(challenge) {
  const target = wordsOf(challenge.challenge);
  const salt = new TextEncoder().encode(challenge.salt);
  // The salt's whole blocks are the same for every try: hash them once.
  const mid = Uint32Array.from(INITIAL);
  const whole = salt.length - (salt.length % 64);
  for (let offset = 0; offset < whole; offset += 64) compress(mid, salt, offset);
  const rest = salt.subarray(whole);
  const tail = new Uint8Array(128);
  const h = new Uint32Array(8);
  const last = challenge.maxnumber;
  const step = Math.max(1, Math.floor(last / 100));
  // The tail for `n`: the salt's last bytes, the number's digits, 0x80, zeros, the length.
  // Rebuilt when the number gets a digit more; otherwise its digits are counted up in place.
  let digits = 0;
  let blocks = 1;
  const layout = (n) => {
    const text = String(n);
    digits = text.length;
    tail.fill(0);
    tail.set(rest);
    for (let i = 0; i < digits; i++) tail[rest.length + i] = text.charCodeAt(i);
    tail[rest.length + digits] = 0x80;
    blocks = rest.length + digits + 9 <= 64 ? 1 : 2;
    const bits = (salt.length + digits) * 8;
    const end = blocks * 64;
    tail[end - 4] = bits >>> 24; tail[end - 3] = bits >>> 16; tail[end - 2] = bits >>> 8; tail[end - 1] = bits;
  };
  layout(0);
  for (let n = 0; n <= last; n++) {
    if (n > 0) {
      // n - 1 + 1, in the tail's decimal digits.
      let i = rest.length + digits - 1;
      while (i >= rest.length && tail[i] === 0x39) tail[i--] = 0x30;
      if (i < rest.length) layout(n);
      else tail[i] += 1;
    }
    h.set(mid);
    compress(h, tail, 0);
    if (blocks === 2) compress(h, tail, 64);
    if (h[0] === target[0] && h[1] === target[1] && h[2] === target[2] && h[3] === target[3]
      && h[4] === target[4] && h[5] === target[5] && h[6] === target[6] && h[7] === target[7]) return n;
    if (n % step === 0) postMessage({ progress: n / (last + 1) });
  }
  return null;
}

self.onmessage = ({ data: challenge }) => {
  const started = performance.now();
  const number = solve(challenge);
  if (number === null) postMessage({ failed: true });
  else postMessage({ number, took: Math.round(performance.now() - started) });
};
