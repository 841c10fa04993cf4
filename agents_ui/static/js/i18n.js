// The console's two languages. Keys are stable names; `t` fills {placeholders}. A missing key
// in zh-CN falls back to English rather than showing the key.
import { EN } from "./i18n-en.js";
import { ZH_CN } from "./i18n-zh-CN.js";

const DICTIONARIES = { en: EN, "zh-CN": ZH_CN };
export const LANGUAGES = [["en", "English"], ["zh-CN", "中文"]];
let current = "en";
const listeners = new Set();

export function supported(lang) {
  if (lang in DICTIONARIES) return lang;
  return typeof lang === "string" && lang.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export function language() { return current; }

export function setLanguage(lang) {
  const next = supported(lang);
  if (next === current) return;
  current = next;
  document.documentElement.lang = current;
  translateTree(document);
  for (const fn of listeners) fn(current);
}

export function onLanguage(fn) { listeners.add(fn); return () => listeners.delete(fn); }

export function t(key, vars = {}) {
  const text = DICTIONARIES[current][key] ?? EN[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

// Static labels carry data-i18n (text), data-i18n-placeholder, data-i18n-title, data-i18n-aria.
export function translateTree(root) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  for (const node of root.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  for (const node of root.querySelectorAll("[data-i18n-aria]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nAria));
  }
}
