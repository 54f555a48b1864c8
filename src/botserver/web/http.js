// Talking to the API over HTTP, and what the page keeps in sessionStorage.

export const STORAGE = {
  session: "botserver.session",
  draft: "botserver.draft",
  outbox: "botserver.outbox",
  signedOut: "botserver.signed-out",
};

export class ApiFailure extends Error {
  constructor(status, error, retryAfter) {
    super(error?.message || `The server answered ${status}.`);
    this.status = status;
    this.code = error?.code || "SERVER_ERROR";
    this.retryAfter = Number(retryAfter) || 0;
  }
}

export function cookie(name) {
  const prefix = `${name}=`;
  const found = document.cookie.split("; ").find((part) => part.startsWith(prefix));
  return found ? decodeURIComponent(found.slice(prefix.length)) : "";
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // Cookie-authenticated writes must echo the CSRF cookie (double submit).
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("botserver_csrf");
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiFailure(response.status, data?.error, response.headers.get("Retry-After"));
  }
  return data;
}

export function load(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

export function save(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private modes may refuse storage; the page still works, it just forgets on reload.
  }
}

export function newClientId() {
  // crypto.randomUUID needs a secure context; getRandomValues works everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
