// The console's entry point: session (login/logout), the hash router, the top bar, and the
// always-on incident feed (alerts play their sound whatever view is open).

import { Api, loadSession, saveSession } from "./api.js";
import { announce, clear, h, toast } from "./dom.js";
import { AlertSound } from "./sound.js";
import { IncidentFeed, IncidentsView, isEmergency } from "./incidents.js";
import { WallView } from "./wall.js";
import { CameraView } from "./camera.js";
import { DashboardView } from "./dashboard.js";
import { setRuleTypes } from "./overlay.js";
import { SignalsView } from "./signals.js";
import { WasteView } from "./waste.js";

const api = new Api("");
const sound = new AlertSound();
const $ = (id) => document.getElementById(id);

const ctx = {
  api,
  sound,
  user: null,
  feed: null,
  _ruleTypes: null,
  async ruleTypes() {
    if (!this._ruleTypes) {
      const d = await api.gql("{ ruleTypes { name defaultClasses severity paramsSchema producesCounts acceptsSignals colour } }");
      this._ruleTypes = d.ruleTypes;
      setRuleTypes(d.ruleTypes);
    }
    return this._ruleTypes;
  },
  async cameras() {
    const d = await api.gql(`{ cameras { id name group site enabled analysisFps snapshotUrl
      status { state at inputFps analysedFps lastFrameAt width height message decodeErrors reconnects } } }`);
    return d.cameras;
  },
  get isAdmin() { return this.user?.role === "admin"; },
  get canOperate() { return ["admin", "operator"].includes(this.user?.role); },
};

// for operators' tooling and the browser test: counters only, never the token
window.smartcityConsole = { sound: sound.stats, alerts: [] };

const ROUTES = {
  wall: WallView,
  camera: CameraView,
  incidents: IncidentsView,
  counts: DashboardView,
  waste: WasteView,
  signals: SignalsView,
};

let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const [name, ...rest] = path.split("/").filter(Boolean);
  return { name: name || "wall", args: rest.map(decodeURIComponent), query: new URLSearchParams(query) };
}

function route() {
  if (!ctx.user) return;
  const { name, args, query } = parseHash();
  const View = ROUTES[name] || WallView;
  if (current) current.unmount();
  const main = clear($("main"));
  for (const a of document.querySelectorAll("[data-route]")) {
    const on = a.dataset.route === name || (name === "camera" && a.dataset.route === "wall");
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  current = new View(ctx);
  current.mount(main, { args, query }).catch((err) => {
    main.append(h("p.form-error", { role: "alert" }, `Could not load this view: ${err.message}`));
  });
}

function showConnection(state) {
  const el = $("conn");
  el.dataset.state = state;
  el.textContent = { live: "● live", connecting: "connecting…", reconnecting: "reconnecting…", unauthorized: "signed out" }[state] || state;
}

function speakerIcon(muted) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", muted
    ? "M4 9h4l5-4v14l-5-4H4z M16 9l5 6 M21 9l-5 6"
    : "M4 9h4l5-4v14l-5-4H4z M16 8.5a5 5 0 0 1 0 7 M18.5 6a8.5 8.5 0 0 1 0 12");
  svg.append(path);
  return svg;
}

function updateMute() {
  const b = $("mute");
  b.setAttribute("aria-pressed", String(sound.muted));
  b.replaceChildren(speakerIcon(sound.muted), sound.muted ? "Sound off" : "Sound on");
  b.title = sound.muted ? "Turn alert sounds on" : "Mute alert sounds";
}

function updateBadge() {
  const n = ctx.feed ? ctx.feed.openCount() : 0;
  const b = $("open-badge");
  b.hidden = n === 0;
  b.textContent = String(n);
  b.setAttribute("aria-label", `${n} open incident${n === 1 ? "" : "s"}`);
}

/** Confirm / Cancel on the banner of an emergency: one click, audited by the server. */
function emergencyActions(alert, banner) {
  if (!isEmergency(alert) || !ctx.feed || !ctx.canOperate) return [];
  const act = (key, done) => async () => {
    try {
      await ctx.feed.act(alert.incidentId, key, key === "dismiss" ? "cancelled from the alert banner" : null);
      banner.hidden = true;
      toast(`Emergency ${done}.`);
    } catch (err) {
      toast(`Refused: ${err.message}`, "error");
    }
  };
  return [
    h("button.primary.confirm", { type: "button", dataset: { quick: "acknowledge" }, onclick: act("acknowledge", "confirmed") }, "Confirm"),
    h("button.danger.cancel", { type: "button", dataset: { quick: "dismiss" }, onclick: act("dismiss", "cancelled") }, "Cancel"),
  ];
}

function showAlert(alert, incident) {
  const banner = $("alert-banner");
  clear(banner);
  banner.dataset.severity = alert.severity;
  banner.dataset.emergency = String(isEmergency(alert));
  const where = alert.cameraIds.join(", ");
  banner.append(
    h("span.alert-icon", { "aria-hidden": "true" }, "⚠"),
    h("strong", {}, `${alert.severity.toUpperCase()} — ${alert.kind.replaceAll("_", " ")}`),
    h("span", {}, ` on ${where}`),
    h("a.btn", { href: `#/incidents/${encodeURIComponent(alert.incidentId)}`, onclick: () => { banner.hidden = true; } }, "Open incident"),
    ...emergencyActions(alert, banner),
    h("button.icon-btn", { type: "button", "aria-label": "Dismiss alert banner", onclick: () => { banner.hidden = true; } }, "✕"),
  );
  banner.hidden = false;
  clearTimeout(showAlert.timer);
  showAlert.timer = setTimeout(() => { banner.hidden = true; }, 30000);
  void incident;
}

async function startSession(session) {
  ctx.user = session.user;
  api.setToken(session.token);
  $("whoami").textContent = `${session.user.username} · ${session.user.role}`;
  $("login").hidden = true;
  $("shell").hidden = false;
  ctx.feed = new IncidentFeed(api);
  ctx.feed.addEventListener("change", updateBadge);
  ctx.feed.addEventListener("alert", (ev) => {
    const { alert } = ev.detail;
    window.smartcityConsole.alerts.push(alert);
    sound.play(alert.sound, alert.severity, isEmergency(alert));
    showAlert(alert);
    announce(`New ${alert.severity} incident: ${alert.kind} on ${alert.cameraIds.join(", ")}`);
  });
  try {
    await ctx.feed.start();
  } catch (err) {
    toast(`Incident feed unavailable: ${err.message}`, "error");
  }
  updateBadge();
  // the Waste tab only where the waste extension runs (its fields are in the API)
  api.gql("{ wastePlans(limit: 1) { id } }").then(() => { $("nav-waste").hidden = false; }, () => {});
  // the Signals tab only where the signals extension runs
  api.gql("{ signalJunctions { id } }").then(() => { $("nav-signals").hidden = false; }, () => {});
  route();
  $("main").focus();
}

function endSession(message) {
  saveSession(null);
  if (ctx.feed) ctx.feed.stop();
  ctx.feed = null;
  ctx.user = null;
  ctx._ruleTypes = null;
  if (current) current.unmount();
  current = null;
  api.setToken(null);
  clear($("main"));
  $("shell").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-password").value = "";
  $("login-user").focus();
}

function init() {
  api.addEventListener("connection", (ev) => showConnection(ev.detail));
  api.addEventListener("unauthorized", () => {
    if (ctx.user) endSession("Your session has ended: please sign in again.");
  });
  updateMute();
  $("mute").addEventListener("click", () => { sound.setMuted(!sound.muted); updateMute(); });
  $("logout").addEventListener("click", () => endSession(""));
  window.addEventListener("hashchange", route);
  // links styled as buttons answer Space like buttons do
  document.addEventListener("keydown", (ev) => {
    const a = ev.target;
    if (ev.key === " " && a instanceof HTMLAnchorElement && a.classList.contains("btn")) {
      ev.preventDefault();
      a.click();
    }
  });

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sound.unlock(); // a user gesture: later alerts may play
    const btn = $("login-submit");
    const err = $("login-error");
    err.textContent = "";
    btn.disabled = true;
    try {
      const res = await api.login($("login-user").value.trim(), $("login-password").value);
      if (res.__typename === "LoginSuccess") {
        const session = { token: res.token, user: res.user };
        saveSession(session);
        await startSession(session);
      } else {
        err.textContent = res.retryAfterS > 0
          ? `${res.message} — try again in ${Math.ceil(res.retryAfterS)} s.`
          : res.message;
        $("login-password").select();
      }
    } catch (e) {
      err.textContent = e.message;
    } finally {
      btn.disabled = false;
    }
  });

  const session = loadSession();
  if (session && session.token) {
    api.token = session.token;
    api.gql("{ me { id username role groups } }")
      .then((d) => startSession({ token: session.token, user: d.me }))
      .catch(() => endSession(""));
  } else {
    endSession("");
  }
}

init();
