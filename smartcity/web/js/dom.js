// Small DOM helpers shared by the views: element building, formatting, announcements, dialogs.

/** h("button.primary", {onclick, "aria-label": "x"}, "text", child) -> element */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    // through the CSSOM: the Content-Security-Policy refuses style="" attributes (no 'unsafe-inline')
    else if (k === "style") el.style.cssText = v;
    else if (k === "text") el.textContent = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit",
});

/** The server's DateTime is isoformat, sometimes without a zone: it is UTC. */
export function parseTime(iso) {
  if (!iso) return null;
  const s = /[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`;
  return new Date(s);
}

export function fmtTime(iso) {
  const d = parseTime(iso);
  return d ? timeFmt.format(d) : "—";
}

export function fmtDateTime(iso) {
  const d = parseTime(iso);
  return d ? dateTimeFmt.format(d) : "—";
}

export function ago(iso) {
  const d = parseTime(iso);
  if (!d) return "never";
  const s = Math.max(0, (Date.now() - d.getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Tell screen readers something without moving focus. */
export function announce(text) {
  const live = document.getElementById("announcer");
  if (!live) return;
  live.textContent = "";
  requestAnimationFrame(() => { live.textContent = text; });
}

/** Short-lived message at the bottom of the screen. */
export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = h(`div.toast.${kind}`, { role: kind === "error" ? "alert" : "status" }, text);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

/**
 * A modal dialog asking for an optional comment. Resolves to the comment (string) or null when
 * cancelled; Escape cancels (native <dialog>), focus returns to the opener.
 */
export function askComment({ title, label = "Comment (optional)", confirm = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const area = h("textarea", { id: "dlg-comment", rows: 3, maxlength: 2000 });
    const form = h("form", { method: "dialog" },
      h("h2", { id: "dlg-title" }, title),
      h("label", { for: "dlg-comment" }, label),
      area,
      h("div.dialog-actions", {},
        h("button", { type: "button", value: "cancel", onclick: () => dlg.close("cancel") }, "Cancel"),
        h(`button.${danger ? "danger" : "primary"}`, { type: "submit", value: "ok" }, confirm)));
    const dlg = h("dialog.modal", { "aria-labelledby": "dlg-title" }, form);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); dlg.close("ok"); });
    dlg.addEventListener("close", () => {
      const ok = dlg.returnValue === "ok";
      const text = area.value.trim();
      dlg.remove();
      if (opener && opener.focus) opener.focus();
      resolve(ok ? text : null);
    });
    document.body.append(dlg);
    dlg.showModal();
    area.focus();
  });
}

export function downloadText(filename, text, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
