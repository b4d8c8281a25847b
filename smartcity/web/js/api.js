// The console's only way to the server: GraphQL over HTTP (bearer token) and over WebSocket
// (graphql-transport-ws, reconnecting with back-off, subscriptions resumed after a reconnect).

const TOKEN_KEY = "smartcity.session";

export class ApiError extends Error {
  constructor(message, { status = 0, auth = false } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.auth = auth;
  }
}

/** The logged-in session kept in sessionStorage (survives a reload, not a closed tab). */
export function loadSession() {
  try {
    const raw = sessionStorage.getItem(TOKEN_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  if (session) sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class Api extends EventTarget {
  constructor(base = "") {
    super();
    this.base = base;
    this.token = null;
    this.ws = null;
  }

  get wsUrl() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    return `${proto}://${location.host}${this.base}/graphql`;
  }

  /** The address of a picture URL given by the API (snapshotUrl, evidenceUrl): it carries its
   * own short-lived picture token, never the session token (URLs end up in logs). `fresh`
   * adds a cache-buster so that the browser fetches the latest snapshot. */
  imageUrl(url, { fresh = false } = {}) {
    if (!fresh) return `${this.base}${url}`;
    return `${this.base}${url}${url.includes("?") ? "&" : "?"}t=${Date.now()}`;
  }

  async gql(query, variables = {}) {
    const headers = { "content-type": "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res;
    try {
      res = await fetch(`${this.base}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
    } catch (err) {
      throw new ApiError(`server unreachable (${err.message})`);
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      throw new ApiError(`bad response from the server (HTTP ${res.status})`, { status: res.status });
    }
    if (body.errors && body.errors.length) {
      const msg = body.errors.map((e) => e.message).join("; ");
      const auth = res.status === 401 || /not authenticated|token/i.test(msg);
      if (auth) this.dispatchEvent(new CustomEvent("unauthorized", { detail: msg }));
      throw new ApiError(msg, { status: res.status, auth });
    }
    return body.data;
  }

  async login(username, password) {
    const data = await this.gql(
      `mutation($u: String!, $p: String!) { login(username: $u, password: $p) {
         __typename
         ... on LoginSuccess { token user { id username role groups } }
         ... on LoginFailed { message retryAfterS } } }`,
      { u: username, p: password },
    );
    return data.login;
  }

  setToken(token) {
    this.token = token;
    if (this.ws) this.ws.close();
    this.ws = token ? new SubscriptionClient(this.wsUrl, token, this) : null;
  }

  /** Subscribe; returns the function that ends the subscription. */
  subscribe(query, variables, onNext, onError = () => {}) {
    if (!this.ws) throw new ApiError("not logged in", { auth: true });
    return this.ws.subscribe(query, variables, onNext, onError);
  }
}

/** graphql-transport-ws client: one socket, many subscriptions, reconnects with back-off. */
export class SubscriptionClient {
  constructor(url, token, events) {
    this.url = url;
    this.token = token;
    this.events = events; // EventTarget told about "connection" changes and auth failures
    this.subs = new Map();
    this.nextId = 1;
    this.socket = null;
    this.acked = false;
    this.closed = false;
    this.retry = 0;
    this.timer = null;
    this.state = "connecting";
    this.connect();
  }

  setState(state) {
    this.state = state;
    this.events.dispatchEvent(new CustomEvent("connection", { detail: state }));
  }

  connect() {
    if (this.closed) return;
    this.acked = false;
    this.setState(this.retry ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url, "graphql-transport-ws");
    this.socket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${this.token}` } }));
    ws.onmessage = (m) => this.onMessage(JSON.parse(m.data));
    ws.onclose = (ev) => {
      if (this.socket !== ws) return;
      this.acked = false;
      if (this.closed) return;
      if (ev.code === 4403 || ev.code === 4401) {
        this.setState("unauthorized");
        this.events.dispatchEvent(new CustomEvent("unauthorized", { detail: ev.reason || "session expired" }));
        return;
      }
      this.retry += 1;
      const delay = Math.min(15000, 500 * 2 ** Math.min(this.retry, 5)) * (0.75 + Math.random() * 0.5);
      this.setState("reconnecting");
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  onMessage(msg) {
    switch (msg.type) {
      case "connection_ack":
        this.acked = true;
        this.retry = 0;
        this.setState("live");
        for (const [id, sub] of this.subs) this.send(id, sub);
        break;
      case "ping":
        this.socket.send(JSON.stringify({ type: "pong" }));
        break;
      case "next": {
        const sub = this.subs.get(msg.id);
        if (!sub) break;
        if (msg.payload.errors) sub.onError(msg.payload.errors.map((e) => e.message).join("; "));
        if (msg.payload.data) sub.onNext(msg.payload.data);
        break;
      }
      case "error": {
        const sub = this.subs.get(msg.id);
        if (sub) sub.onError((msg.payload || []).map((e) => e.message).join("; "));
        this.subs.delete(msg.id);
        break;
      }
      case "complete":
        // the server ended it (e.g. a slow client was dropped): resume it on the next connection
        break;
      default:
        break;
    }
  }

  send(id, sub) {
    this.socket.send(JSON.stringify({ id, type: "subscribe", payload: { query: sub.query, variables: sub.variables } }));
  }

  subscribe(query, variables, onNext, onError) {
    const id = String(this.nextId++);
    const sub = { query, variables: variables || {}, onNext, onError };
    this.subs.set(id, sub);
    if (this.acked) this.send(id, sub);
    return () => {
      if (!this.subs.delete(id)) return;
      if (this.acked && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify({ id, type: "complete" }));
      }
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.subs.clear();
    if (this.socket) this.socket.close(1000, "logout");
  }
}
