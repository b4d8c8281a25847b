// The schedule part of the rule editor: permanent, 1 h, 2 h, until a date, or weekly hours,
// read back as the API's schedule JSON; plus a one-line summary for rule lists.

import { h } from "./dom.js";

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const CHOICES = [
  ["permanent", "Permanent"],
  ["1h", "1 hour"],
  ["2h", "2 hours"],
  ["until", "Until a date"],
  ["weekly", "Weekly hours"],
];

function localTz() {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch { return "UTC"; }
}

function toLocalInput(unix) {
  const d = new Date(unix * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function choiceOf(s) {
  if (!s || s.kind === "permanent") return "permanent";
  if (s.kind === "for_duration") return s.duration_s === 7200 ? "2h" : "1h";
  return s.kind;
}

export function scheduleFieldset(schedule) {
  const current = choiceOf(schedule);
  const radios = CHOICES.map(([value, text]) =>
    h("label.check", {}, h("input", { type: "radio", name: "rule-schedule", value, checked: value === current, onchange: () => update() }), text));
  const until = h("input", { id: "sched-until", type: "datetime-local",
    value: toLocalInput(schedule && schedule.until ? schedule.until : Date.now() / 1000 + 86400) });
  const win = schedule && schedule.kind === "weekly" && schedule.windows.length ? schedule.windows[0] : { days: [0, 1, 2, 3, 4], start: "07:30", end: "18:00" };
  const days = DAYS.map((d, i) => h("label.check", {}, h("input", { type: "checkbox", name: "sched-day", value: i, checked: win.days.includes(i) }), d));
  const start = h("input", { id: "sched-start", type: "time", value: win.start === "24:00" ? "23:59" : win.start });
  const end = h("input", { id: "sched-end", type: "time", value: win.end === "24:00" ? "23:59" : win.end });
  const tz = h("input", { id: "sched-tz", value: (schedule && schedule.tz) || localTz(), maxlength: 64 });
  const untilBox = h("div.field.sched-extra", { dataset: { for: "until" } }, h("label", { for: "sched-until" }, "Active until"), until);
  const weeklyBox = h("div.sched-extra", { dataset: { for: "weekly" } },
    h("div.checks", { role: "group", "aria-label": "Days" }, days),
    h("div.field-row", {},
      h("div.field", {}, h("label", { for: "sched-start" }, "From"), start),
      h("div.field", {}, h("label", { for: "sched-end" }, "To"), end),
      h("div.field.grow", {}, h("label", { for: "sched-tz" }, "Time zone"), tz)),
    schedule && schedule.kind === "weekly" && schedule.windows.length > 1
      ? h("p.muted.small", {}, `Only the first of ${schedule.windows.length} windows is edited here; the others are kept.`) : null);
  const el = h("fieldset.schedule", { dataset: { field: "schedule" } }, h("legend", {}, "Active"),
    h("div.checks", { role: "radiogroup", "aria-label": "Schedule" }, radios), untilBox, weeklyBox);
  function update() {
    const v = el.querySelector("input[name=rule-schedule]:checked").value;
    untilBox.hidden = v !== "until";
    weeklyBox.hidden = v !== "weekly";
  }
  update();
  return { el, until, start, end, tz, days };
}

/** The API's schedule JSON; an unchanged duration keeps its original start. */
export function readSchedule(f, original) {
  const v = f.el.querySelector("input[name=rule-schedule]:checked").value;
  if (v === "permanent") return { kind: "permanent" };
  if (v === "1h" || v === "2h") {
    const duration = v === "1h" ? 3600 : 7200;
    if (original && original.kind === "for_duration" && original.duration_s === duration) return original;
    return { kind: "for_duration", duration_s: duration };
  }
  if (v === "until") {
    const t = new Date(f.until.value).getTime();
    return { kind: "until", until: Number.isFinite(t) ? Math.round(t / 1000) : null };
  }
  const days = f.days.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => Number(i.value));
  const windows = [{ days, start: f.start.value, end: f.end.value }];
  if (original && original.kind === "weekly") windows.push(...original.windows.slice(1));
  return { kind: "weekly", tz: f.tz.value.trim(), windows };
}

export function scheduleSummary(s) {
  if (!s || s.kind === "permanent") return "permanent";
  if (s.kind === "for_duration") {
    const end = (s.starts_at || 0) + s.duration_s;
    const left = end - Date.now() / 1000;
    return left > 0 ? `for ${Math.round(s.duration_s / 360) / 10} h (${Math.ceil(left / 60)} min left)` : "expired";
  }
  if (s.kind === "until") {
    const d = new Date(s.until * 1000);
    return d.getTime() > Date.now() ? `until ${d.toLocaleString()}` : "expired";
  }
  return s.windows.map((w) => `${w.days.map((d) => DAYS[d]).join(",")} ${w.start}–${w.end}`).join("; ") + ` (${s.tz})`;
}
