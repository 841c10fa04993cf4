// Dates, numbers and durations in the user's language and the browser's time zone.
import { language, t } from "./i18n.js";

// The browser's own locale when it speaks the chosen language (en-GB writes dates as en-GB
// does), else the chosen language itself.
export function locale() {
  const base = language().split("-")[0];
  return (navigator.languages || []).find((l) => l.split("-")[0] === base) || language();
}

const cache = new Map();
function formatter(kind, options) {
  const key = `${locale()}|${kind}`;
  if (!cache.has(key)) cache.set(key, new Intl.DateTimeFormat(locale(), options));
  return cache.get(key);
}

export function dateTime(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : formatter("dt", { dateStyle: "medium", timeStyle: "short" }).format(d);
}

export function time(value) {
  if (value === null || value === undefined) return "";
  return formatter("t", { timeStyle: "medium" }).format(new Date(value));
}

export function hourMinute(value) {
  return formatter("hm", { timeStyle: "short" }).format(new Date(value));
}

// A calendar date such as a birthday ("1985-03-02") is not an instant: no time-zone shift.
export function calendarDate(iso) {
  if (!iso) return "";
  const [y, m, d] = iso.split("-").map(Number);
  return formatter("cal", { dateStyle: "long", timeZone: "UTC" }).format(new Date(Date.UTC(y, m - 1, d)));
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60), rest = s % 60;
  return m ? `${m}:${String(rest).padStart(2, "0")}` : t("seconds", { n: rest });
}

export function percent(ratio) {
  if (ratio === null || ratio === undefined) return "–";
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(ratio);
}

export function timeZone() { return Intl.DateTimeFormat().resolvedOptions().timeZone; }
