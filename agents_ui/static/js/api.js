// The REST API under /api/v1, with the bearer token kept for this browser tab's session.
const TOKEN_KEY = "cc.token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

export const api = {
  token: localStorage.getItem(TOKEN_KEY),
  // Server clock minus ours, from the Date header: offer countdowns then agree with the
  // server's deadline even when this computer's clock is off.
  skewMs: 0,
  onUnauthorized: () => {},

  async call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(`/api/v1${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const date = Date.parse(res.headers.get("Date") || "");
    if (!Number.isNaN(date)) this.skewMs = date - Date.now();
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (res.status === 401 && this.token) this.onUnauthorized();
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  },
  get(path) { return this.call("GET", path); },
  post(path, body) { return this.call("POST", path, body ?? {}); },
  patch(path, body) { return this.call("PATCH", path, body); },

  async login(username, password) {
    const data = await this.post("/auth/login", { username, password });
    this.token = data.token;
    localStorage.setItem(TOKEN_KEY, data.token);
    return data.user;
  },
  async logout() {
    try { if (this.token) await this.post("/auth/logout"); } catch { /* already gone */ }
    this.forget();
  },
  forget() { this.token = null; localStorage.removeItem(TOKEN_KEY); },
  serverNow() { return Date.now() + this.skewMs; },
};
