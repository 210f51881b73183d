// Calls to the portfolio API with the browser's session. Every failure becomes an ApiError
// whose message a person can read: the API's own (its one error shape,
// {"error": {"code", "message", "details"}}), or a plain one when the network or server failed.

const TIMEOUT_MS = 15000;

export class ApiError extends Error {
  constructor(message, { status = 0, code = "network" } = {}) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** The session is gone: signing in again is the only fix. */
  get signedOut() {
    return this.status === 401 || (this.status === 403 && this.code === "not_authenticated");
  }
}

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

async function request(url, { headers = {}, ...options }) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url, {
      credentials: "same-origin",
      ...options,
      headers: { Accept: "application/json", ...headers },
      signal: controller.signal,
    });
  } catch {
    throw new ApiError("Can't reach Clera right now. Check your connection.");
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = body && body.error;
    let message = error && error.message
      ? error.message : `Clera answered ${response.status}; try again shortly.`;
    const wait = Number(response.headers.get("Retry-After"));   // 429 and 503 say when
    if (wait > 0) message += ` Try again in ${Math.ceil(wait)} s.`;
    throw new ApiError(message, { status: response.status, code: error ? error.code : "http_error" });
  }
  if (body === null) throw new ApiError("Clera sent an answer this page can't read.");
  return body;
}

/** GET `path` with the query `params` (undefined/null values left out). */
export function getJSON(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(name, value);
  }
  return request(url, { method: "GET" });
}

/** POST a JSON body, with the CSRF token the session needs and any extra headers. */
export function postJSON(path, params, body, headers = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return request(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), ...headers },
    body: JSON.stringify(body),
  });
}
