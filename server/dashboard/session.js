// The read token and the polling of the dashboard's pages (inlined into each by index.ts). Without
// a token nothing is requested; a 401 or 403 stops the polling until another token is given, so a
// page left open without one neither shows stale "nothing running" panels nor fills the browser's
// log with refused requests. Other failures (the coordinator restarting) keep polling.
'use strict';
const session = (() => {
  const byId = (id) => document.getElementById(id);
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get('token')) {
    localStorage.setItem('portrait.token', fragment.get('token'));
    history.replaceState(null, '', location.pathname);
  }
  let token = localStorage.getItem('portrait.token') || '';
  let refresh = async () => undefined;
  let intervalMs = 5000;
  let timer = 0;
  let generation = 0;

  function needToken(message) {
    clearTimeout(timer);
    byId('auth-error').textContent = message;
    byId('auth').hidden = false;
    byId('content').hidden = true;
    byId('problem').hidden = true;
    byId('status-line').textContent = 'no read token';
  }

  async function get(url) {
    const res = await fetch(url, { headers: { authorization: 'Bearer ' + token }, cache: 'no-store' });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(body.message || 'HTTP ' + res.status), { code: body.code, status: res.status });
    return body;
  }

  async function tick() {
    clearTimeout(timer);
    const mine = ++generation;
    if (!token) return needToken('This page needs a read token.');
    try {
      await refresh();
      if (mine !== generation) return;
      byId('auth').hidden = true;
      byId('problem').hidden = true;
      byId('content').hidden = false;
    } catch (err) {
      if (mine !== generation) return;
      if (err.status === 401 || err.status === 403) return needToken('The coordinator refused this token (' + (err.code ? err.code + ': ' : '') + err.message + ').');
      byId('problem').hidden = false;
      byId('problem').textContent = 'Cannot read the API: ' + (err.code ? err.code + ': ' : '') + err.message + ' (retrying)';
    }
    timer = setTimeout(tick, intervalMs);
  }

  function useToken() {
    token = byId('token').value.trim();
    localStorage.setItem('portrait.token', token);
    byId('token').value = '';
    tick();
  }
  byId('save').onclick = useToken;
  byId('token').onkeydown = (e) => { if (e.key === 'Enter') useToken(); };

  return {
    get,
    /** Calls `fn` now and every `ms` while the token is accepted. */
    poll(fn, ms) { refresh = fn; intervalMs = ms; tick(); },
  };
})();
