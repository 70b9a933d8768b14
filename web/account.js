// The sign-in and sign-up page.
import { api, header, params, sameOriginPath, say, signIn } from '/app.js';
header('Sign in');
const message = document.getElementById('message');
// Back to where the visitor came from, on this site only (`?next=/\\evil.example` and the
// like resolve elsewhere and are refused).
const next = (role) => sameOriginPath(params.get('next'), role === 'organizer' ? '/organizer.html' : '/');
const fields = (form) => Object.fromEntries(new FormData(form));
document.getElementById('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = fields(e.target);
  try {
    const answer = await api('/auth/login', { method: 'POST', body, auth: false });
    signIn({ token: answer.token, user_id: answer.user_id, role: answer.role, email: body.email });
    location.href = next(answer.role);
  } catch (error) {
    say(message, error.status === 401 ? 'Wrong email or password.' : error.message, 'error');
  }
});
document.getElementById('signup').addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = fields(e.target);
  try {
    const answer = await api('/auth/signup', { method: 'POST', body, auth: false });
    signIn({ token: answer.token, user_id: answer.user_id, role: body.role, email: body.email });
    location.href = next(body.role);
  } catch (error) {
    say(message, error.message, 'error');
  }
});
